package database

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestDatabaseNames(t *testing.T) {
	for _, bad := range []string{"", "Shop", "1db", "db-", "a--b", "a_b", "a/b", "../x", "a b", strings.Repeat("a", 41)} {
		if err := (Database{Name: bad}).Check(); !errors.Is(err, ErrBadName) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	db := Database{Name: "shop-eu"}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	if db.Instance() != "db-shop-eu" || db.Volume() != "db-shop-eu" || db.Role() != "shop_eu" || db.DBName() != "shop_eu" || db.SocketDir() != "/slipway/db/shop-eu" {
		t.Errorf("names %s %s %s %s %s", db.Instance(), db.Volume(), db.Role(), db.DBName(), db.SocketDir())
	}
}

// The URL is libpq's socket form, and a generated password needs no escaping.
func TestURLIsLibpqsSocketForm(t *testing.T) {
	db := Database{Name: "shop"}
	creds := Credentials{User: "shop", Password: newPassword(), Database: "shop"}
	got := URL(db, creds)
	if got != "postgres://shop:"+creds.Password+"@/shop?host=/slipway/db/shop" {
		t.Errorf("URL %s", got)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); pw != creds.Password || u.Query().Get("host") != "/slipway/db/shop" {
		t.Errorf("parsed back: %v", u)
	}
	if newPassword() == creds.Password || len(creds.Password) != 32 {
		t.Errorf("password %q", creds.Password)
	}
}
