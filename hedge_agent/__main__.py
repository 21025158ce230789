import multiprocessing
import sys

from hedge_agent.cli import main


def _run_module_when_frozen() -> None:
    """The built program stands in for ``python -m hedge_agent.X ...`` (the demo starts its sandbox so)."""
    if getattr(sys, "frozen", False) and len(sys.argv) > 2 and sys.argv[1] == "-m":
        module = sys.argv[2]
        if not module.startswith("hedge_agent."):
            raise SystemExit(f"hedge-agent: -m runs hedge_agent modules only, not {module!r}")
        import runpy

        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        raise SystemExit(0)


if __name__ == "__main__":
    multiprocessing.freeze_support()  # also the PyInstaller entry script: MT5 worker processes re-enter here
    _run_module_when_frozen()
    raise SystemExit(main())
