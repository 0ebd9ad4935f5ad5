"""Many videos on many machines: a corpus processed by Dask, one result file per video.

A *corpus* is a folder (searched recursively) or a manifest (``data/manifest.json`` schema: its
``root`` and ``videos``). Each video is one item, and so is each folder of still images. Every item
becomes one task, :func:`process_video`, run on a Dask worker; :func:`run_corpus` submits them to a
``LocalCluster`` (default) or an existing scheduler and collects a summary.

Guarantees:

* **One result file per item**, ``OUT/<relative path with / as __>.json`` in the
  ``detect --json`` schema, written atomically (never half-written). It holds no
  timings, host names or worker ids, so a run on 1 worker and a run on N workers give byte-identical
  files. Beside it, ``OUT/<name>.csv`` (:func:`csv_name`) has one row per face and per frame without faces
  (:mod:`mtcnn_lab.io.face_table`), written after the result file (a missing one is written again from it).
  Timings and errors go to ``OUT/summary.json`` and ``OUT/summary.csv``. Two items of one result name
  (``a__b.avi`` beside ``a/b.avi``) are refused, naming both; a symlink is named after itself.
* **Resume**: an item is skipped when both its files exist and its result file was made with the same ``every``,
  decode profile, backend and weights, from the item as it is now (``meta.source``, :func:`item_source`: a
  video's size and modification time; each image's name, size and time in a folder); else it is redone.
  While a video is processed its per-frame results are appended to
  a hidden JSON Lines file ``OUT/.<name>.<profile>.frames.jsonl``; a task retried after its worker died resumes
  from it, unless it was written with other settings (:func:`~mtcnn_lab.video.stream.run_settings`, with the
  item's :func:`item_source`): then it is discarded.
* **Decoding**: videos are decoded with one decode profile (:mod:`mtcnn_lab.io.decode.profiles`); each
  video's result file records how (``meta.decoding``: profile, libraries, stream, rotation, frames).
* **Failures**: a corrupt or unreadable input gives an ``error`` row in the summary (one-line
  message; also a file name that is not UTF-8 or a link that loops) and the other items go on. A worker
  that dies mid-video is replaced by Dask's nanny and the task is rescheduled (up to
  ``distributed.scheduler.allowed-failures`` times); exceptions are retried ``retries`` times.
* **Ctrl-C** cancels the tasks (the local cluster's workers ignore it and stop between frames as the cluster
  closes: one line, no worker tracebacks) and removes the partial files of this run's items
  (:func:`~mtcnn_lab.corpus.task.partial_files`), so OUT holds result files only. A run removes no other file:
  not a user's, not another item's or another run's.
* **Network**: the local cluster listens on 127.0.0.1 only, its dashboard too (on a free port, logged at INFO).

Fault injection (tests and ``scripts/reliability_report.py`` only): ``process_video(...,
crash_after_frames=N)`` kills its own worker process with ``os._exit(1)`` after detecting N frames,
once per item: a marker file ``OUT/.<name>.crashed`` records the crash, so the retry completes.
"""

from mtcnn_lab.corpus.items import csv_name, find_corpus, output_name
from mtcnn_lab.corpus.run import run_corpus
from mtcnn_lab.corpus.task import is_complete, item_source, process_video

__all__ = ["csv_name", "find_corpus", "is_complete", "item_source", "output_name", "process_video", "run_corpus"]
