package baseimage

// PostgresAlias is the alias `slipway image build postgres` imports: the
// image every database server (and every scratch server that proves a
// backup) is made from.
const PostgresAlias = "slipway/postgres"

// PostgresVersion is the major version of Debian 12's postgresql.
const PostgresVersion = "15"

// PostgresPackages are what the image holds beyond mmdebstrap's minbase:
// the server, which brings psql, pg_dump and pg_restore with it. Instances
// have no network, so nothing can be installed later.
var PostgresPackages = []string{"postgresql-" + PostgresVersion}

// postgresRemove is the cluster postgresql-common's postinst makes in the
// build (15/main, with a snakeoil certificate): slipway keeps each server's
// data on its own volume and makes it with initdb there, so the image's
// would be 40 MB nobody reads.
var postgresRemove = []string{
	"var/lib/postgresql/" + PostgresVersion + "/main",
	"etc/postgresql/" + PostgresVersion + "/main",
}

// NewPostgresRecipe is the Postgres image from mirror. Minbase is enough:
// the image runs the server under slipway's supervisor, never apt.
func NewPostgresRecipe(mirror string) DebianRecipe {
	return DebianRecipe{
		Name:     "postgres",
		Mirror:   mirror,
		Variant:  "minbase",
		Packages: append([]string{}, PostgresPackages...),
		Remove:   append([]string{}, postgresRemove...),
	}.normal()
}
