"""What the app decides, one module a domain: training and models (:mod:`.training`, provenance and
share links in :mod:`.lineage`, finding a model in :mod:`.registry`), workspaces and their quotas
(:mod:`.workspaces`, :mod:`.quotas`), classes (:mod:`.classes`, membership in :mod:`.membership`), own data
sets (:mod:`.datasets`), ONNX and PyTorch in and out (:mod:`.interchange`) and the learned views' cache
(:mod:`.learned`). Services check ownership and quotas and raise the domain errors of :mod:`app.errors`;
routes validate, call one of them and answer; the store (:mod:`app.jobs.store`) only stores.
"""
