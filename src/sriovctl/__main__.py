from sriovctl.cli.main import main

raise SystemExit(main())
