"""Pure detection code: account features, scorers and the pipeline that runs them.

No I/O here: the worker (``stream``) and ``replay`` feed events in and persist what comes out.
"""
