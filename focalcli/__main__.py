"""``python -m focalcli`` runs the ``focal`` command line (also under ``torchrun``)."""

from focalcli.cli.app import main

if __name__ == "__main__":
    main()
