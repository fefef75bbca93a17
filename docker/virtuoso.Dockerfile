# Virtuoso Open Source 7.2 from Debian (the version ./dev test runs the suite against), configured
# as the catalogue's shared record store: SPARQL 1.1 on :8890, the endpoint's user may update.
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends virtuoso-opensource \
 && rm -rf /var/lib/apt/lists/*
COPY docker/virtuoso.ini /etc/sluis/virtuoso.ini
WORKDIR /var/lib/virtuoso
# Start, grant SPARQL updates (a no-op when already granted), then follow the server's log.
CMD ["sh", "-c", "virtuoso-t +configfile /etc/sluis/virtuoso.ini +wait && isql-vt 1111 dba \"${DBA_PASSWORD:-dba}\" exec='GRANT SPARQL_UPDATE TO \"SPARQL\";' ; touch virtuoso.log && exec tail -f virtuoso.log"]
