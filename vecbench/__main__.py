from vecbench.cli.commands import main

raise SystemExit(main())
