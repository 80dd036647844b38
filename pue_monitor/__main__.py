from pue_monitor.cli import main

raise SystemExit(main())
