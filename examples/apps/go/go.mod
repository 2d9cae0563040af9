module example.com/slipway-go-example

// Debian 12's golang-go (in slipway/debian) is Go 1.19.
go 1.19
