"""Where evaluations run: the backend protocol, the process pool, Ray actors, the worker and the
recipe it is given, and the machine's GPUs and memory. Above training, below the evaluators:
it ships a trainer's work elsewhere and knows nothing about scoring, caches or agents."""
