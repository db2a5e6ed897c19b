from vecbench.cli import main

raise SystemExit(main())
