"""`python -m gitartifacts` runs the `gart` command."""

from gitartifacts.cli import main

if __name__ == "__main__":
    main()
