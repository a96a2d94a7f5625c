from agentladder.cli import main

main()
