"""Cached steps of apply. What each step of the training job reads is fingerprinted by
framework/contracts/fingerprint.py (the job tags its run with the same); store.py reads
finished runs and versions from the tracking store, without mlflow where it can;
probe.py decides and says why; reuse.py hands a hit's outputs on."""
