import sys
from pathlib import Path

# the shared builders live beside the tests (no package: pytest's rootdir conftest stays clean)
sys.path.insert(0, str(Path(__file__).parent))
