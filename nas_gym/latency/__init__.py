"""A per-layer latency model of this machine: the table (``model``), the layers a space's networks
are made of (``layers``, ``ops``) and their measurement (``profile``). Read by rewards and by the
table evaluator; imports nothing above the training layer."""
