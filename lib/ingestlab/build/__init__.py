"""What `make setup` builds, apart from running anything of the study: the artifacts (the
services, the broker's jars, the tools; `artifacts`), the container images made from them
(`images`, laid out as `layout` says) and the deployment footprint (`footprint`); `builders`
is what `ingestlab build` runs.

Above `engine` (the images are built into the workbook's Docker engine) and `host`; below
`stack`, which runs what was built here. Nothing here starts a broker or a service.
"""
