from ocsptool.cli import main

main()
