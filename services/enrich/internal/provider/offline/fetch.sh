#!/usr/bin/env bash
# fetch.sh DATA_DIR — download the offline ASN/country data for package offline into DATA_DIR.
#
# Uses `npm pack` (the npm registry only) for:
#   @ip-location-db/asn                        (CC BY 4.0: attribute RouteViews, DB-IP and NRO)
#   @ip-location-db/geo-whois-asn-country-mmdb (CC0-1.0)
# and keeps asn-ipv4.csv, asn-ipv6.csv, geo-whois-asn-country-ipv{4,6}.mmdb plus each package's
# licence files and package.json (under licenses/<package>/). The npm snapshot is frozen at
# 2.3.2026061719 and the maintainer warns it contains errors; use it for coarse enrichment only.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 DATA_DIR" >&2
	exit 2
fi
dest=$1
version=${IP_LOCATION_DB_VERSION:-2.3.2026061719}
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() { # fetch PACKAGE FILE...
	local pkg=$1
	shift
	local short=${pkg#@ip-location-db/}
	(cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
	local tgz
	tgz=$(ls "$work"/ip-location-db-"$short"-*.tgz)
	mkdir -p "$work/$short"
	tar -xzf "$tgz" -C "$work/$short"
	for f in "$@"; do
		if [[ ! -f "$work/$short/package/$f" ]]; then
			echo "fetch.sh: $pkg has no $f" >&2
			exit 1
		fi
		cp "$work/$short/package/$f" "$dest/$f.tmp"
		mv "$dest/$f.tmp" "$dest/$f"
	done
	mkdir -p "$dest/licenses/$short"
	find "$work/$short/package" -maxdepth 1 -type f \( -iname '*license*' -o -iname '*licence*' -o -iname 'package.json' -o -iname 'README*' \) \
		-exec cp {} "$dest/licenses/$short/" \;
}

fetch @ip-location-db/asn asn-ipv4.csv asn-ipv6.csv
fetch @ip-location-db/geo-whois-asn-country-mmdb geo-whois-asn-country-ipv4.mmdb geo-whois-asn-country-ipv6.mmdb
echo "offline data in $dest:" >&2
ls -l "$dest" >&2
