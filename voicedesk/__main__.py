from voicedesk.cli import main

main()
