"""Feast in the runtime: the store a recipe's `data.source.feast` names (store.py), its
definitions registered and its view materialised as apply steps (register.py), the
point-in-time join that feeds training (join.py), and the online lookups of the serving
app (runtime/serving/lookup.py). Feast is an optional extra, imported only by these."""
