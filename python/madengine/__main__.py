from madengine.cli.app import main

main()
