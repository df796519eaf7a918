"""The whole loop on one machine: brokers, supervised stage processes, the demo.

``brokers`` starts the embedded Tansu or a local Apache Kafka; ``supervisor`` runs the stages
as child processes; ``loop`` wires a broker, a database and every stage; ``demo`` streams a
:mod:`driftloop.lab` scenario through it and ``moments`` reports what happens; ``bench`` runs
the same loop as the real system of the adaptation benchmark.
"""
