"""What the numbered notebooks show: views of saved runs, one module per topic.

`display` (the run a notebook reads, whole tables, the numbers it records), `ceiling`,
`soak`, `startup` and `records` (one notebook's views each) and `article` (the article's
numbers and words, read from data/). Notebooks import the names they use, as they do from
`ingestlab.analysis`; `ingestlab.report` executes and renders the notebooks and reads
`display.RUN_MIMETYPE` from their outputs.
"""
