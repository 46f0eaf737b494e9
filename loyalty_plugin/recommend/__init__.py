"""The recommender's models: scikit-learn shaped, NumPy/SciPy only, no Flask."""
