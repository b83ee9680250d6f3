"""The benchmark: tf_raw's training speed beside the same network elsewhere.

`python -m tf_raw.bench` (`make bench`) times tf_raw's own training call, the
notebook's TF1 graph (Session + feed_dict), Keras `model.fit` and PyTorch on
the same shapes, in float32 and (tf_raw, Keras, PyTorch) mixed bfloat16, each
in a process of its own (`worker.py`; the peers are `peers.py` and
`torch_peer.py`), all warmed up first and then timed in turns
(`timing.py`), then two full-size epochs of `python -m tf_raw.train`;
`bench.py` runs them and prints the table with the ratios.
Nothing in the lesson imports this package.
"""
