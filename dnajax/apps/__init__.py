"""One module per `dnajax` verb: its arguments (`add_arguments`), its checks, its work and its rendering (`main`).

No module here imports another module of this package; what two verbs share lives in a layer below.
"""
