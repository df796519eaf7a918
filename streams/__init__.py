"""driftloop's base layer: the event contract, settings, Kafka adapters and the store.

Every other package may import from here; nothing here imports from them.
"""
