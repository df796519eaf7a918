"""The dashboard: where people look at the loop and correct it (``driftloop dashboard``).

A Streamlit multipage app (``app.py``, pages in ``views/``) over a read-only query layer that
needs no Streamlit: ``queries`` (predictions, feedback, labelled examples), ``drift_queries``
(the monitor's tables), ``registry_queries`` and ``job_queries`` (retrain's tables). Changes go
through ``corrections`` (label corrections sent as reviewer ``Feedback`` events) and
``actions`` (promotion and rollback through retrain's registry), both for signed-in users only
(``auth``), and are recorded in the dashboard's audit log (``audit``).
"""
