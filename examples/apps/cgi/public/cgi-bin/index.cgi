#!/bin/sh
# The front page. busybox httpd runs cgi-bin/index.cgi for "/" because
# public/ has no index.html. The app's environment (GREETING) reaches CGI
# scripts through httpd.
greeting=$(printf '%s' "${GREETING:-Hello}" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g')
echo "Content-Type: text/html; charset=utf-8"
echo
cat <<HTML
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>slipway cgi example</title></head>
<body>
<h1>$greeting from slipway</h1>
<p>Made by a shell script in instance $(hostname) at $(date -u '+%Y-%m-%d %H:%M:%S') UTC.</p>
</body>
</html>
HTML
