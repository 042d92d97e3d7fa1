"""Search spaces: a sweep's file of fixed settings, searched parameters and study settings
(`file`), its parameters and their distributions (`params`), what it must hold beyond
well-typed sections (`checks`), and reading it (`load`)."""
