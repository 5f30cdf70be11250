from mlp.cli.main import main

main()
