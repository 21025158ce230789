import multiprocessing

from hedge_agent.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # also the PyInstaller entry script: MT5 worker processes re-enter here
    raise SystemExit(main())
