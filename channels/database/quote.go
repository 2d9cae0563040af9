package database

import "strings"

// quoteIdent and quoteLiteral quote for SQL as Postgres's quote_ident and
// quote_literal do (standard_conforming_strings is on since 9.1). Names
// here are checked already; quoting anyway keeps that a single rule.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
