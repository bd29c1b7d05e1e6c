"""The actor tests share tests/conftest.py's one local Ray cluster (start-up is slow on 2 cores)."""
import warnings

warnings.filterwarnings("ignore", message=".*NumPy.*")
