"""The SQL of the driver's schema migrations, one module per era (versions 1-3, 4, 5, 6, 7, 8);
`_migrate.MIGRATIONS` lists them in order. Existing schemas record the versions they ran, so an
applied migration's SQL is never edited: a change is a new migration."""
