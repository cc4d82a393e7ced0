"""The tabular benchmark's file format and its builders: the format and where shipped tables live
(``table_file``, checked row by row in ``table_checks``), the header a build writes (``header``),
the build of every architecture once per seed (``table_build``) and learning-curve tables trained
in grouped passes (``curves``). Above execution (the builds run worker pools), below the
evaluators (the table evaluator reads the format)."""
