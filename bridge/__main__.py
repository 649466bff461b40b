"""`python -m bridge`: the command line (migrate, check-config, sweep, replay, ...)."""

from bridge.cli.main import main

if __name__ == "__main__":
    main()
