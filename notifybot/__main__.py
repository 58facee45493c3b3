from notifybot.cli import main

main()
