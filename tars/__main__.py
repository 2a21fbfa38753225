from tars.cli.app import main

main()
