"""The workbook's own Docker engine and what runs on it: the daemon (`docker_engine`), the
container runtime (`container`: a `Component` backed by a container) and the labels on every
container and image it makes (`labels`, defined once).

Above `host` (the Component protocol, processes), below `build` (which builds images into the
engine) and `stack` (which runs the study's parts in its containers).
"""
