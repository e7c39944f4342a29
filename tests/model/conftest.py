import os
import sys

# tiny.py is shared by this directory's modules (pytest runs with --import-mode=importlib).
sys.path.insert(0, os.path.dirname(__file__))
