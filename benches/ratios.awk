# The targets of benches/RESULTS.md from the per-case instruction counts (`case count` lines).
# Δ of a case = its count minus the baseline carrying the same request (no auth layer).
{ c[$1] = $2 }
function delta(alg, name) { return c[name] - c["baseline/no-auth/" alg "-token"] }
function row(what, got, target, cmp) {
  ok = (cmp == "<=") ? (got <= target) : (got >= target)
  printf "%-58s %8.3f  %s %5.2f  %s\n", what, got, cmp, target, ok ? "met" : "MISSED"
}
END {
  # Like for like (every side deserializes the same user claims struct; `/claims` cases).
  d_hs = delta("HS256", "portcullis/HS256/accept/cache-off/claims")
  row("HS256 + user claims, uncached: Δ / aliri_tower Δ", d_hs / delta("HS256", "aliri_tower/HS256/accept"), 0.7, "<=")
  row("HS256 + user claims, uncached: Δ / floor (verify + one parse)", d_hs / c["floor/HS256/verify+parse"], 1.25, "<=")
  split("RS256 ES256 EdDSA", asym, " ")
  for (i = 1; i <= 3; i++) {
    a = asym[i]
    row(a " + user claims, uncached: Δ / decode into the struct", delta(a, "portcullis/" a "/accept/cache-off/claims") / c["jsonwebtoken/decode/" a], 1.0, "<=")
  }
  split("HS256 RS256 ES256 EdDSA", all, " ")
  for (i = 1; i <= 4; i++) {
    a = all[i]
    row("cache hit " a " + user claims: Δ / static bearer Δ", delta(a, "portcullis/" a "/accept/cache-on/claims") / delta("HS256", "tower-http/static-bearer/accept"), 1.5, "<=")
  }
  print ""
  # The earlier targets, registered claims only (`C = ()`), against decode into the struct.
  hs = c["jsonwebtoken/decode/HS256"]
  row("uncached HS256 accept: Δ / raw HS256 decode", delta("HS256", "portcullis/HS256/accept/cache-off") / hs, 0.6, "<=")
  for (i = 1; i <= 3; i++) {
    a = asym[i]
    row("uncached " a " accept: Δ / raw " a " decode", delta(a, "portcullis/" a "/accept/cache-off") / c["jsonwebtoken/decode/" a], 1.05, "<=")
  }
  for (i = 1; i <= 4; i++) {
    a = all[i]
    row("cache hit " a ": Δ / raw HS256 decode", delta(a, "portcullis/" a "/accept/cache-on") / hs, 0.1, "<=")
  }
  row("missing credential: total / baseline", c["portcullis/reject/missing"] / c["baseline/no-auth"], 1.0, "<=")
  row("client injection: total / AddAuthorization", c["client/portcullis/inject"] / c["client/tower-http/add-authorization"], 1.1, "<=")
  row("client injection, no outcome: total / AddAuthorization", c["client/portcullis/inject/no-outcome"] / c["client/tower-http/add-authorization"], 1.1, "<=")
  # Every case against every peer that has it: the peer's count over ours (> 1: we are faster).
  print ""
  printf "%-40s %10s %16s %16s %16s\n", "case (portcullis, cache off, user claims)", "ours", "jwt-authorizer", "axum-jwt-auth", "aliri_tower"
  n = split("HS256/accept RS256/accept ES256/accept EdDSA/accept reject/missing HS256/reject/expired HS256/reject/bad-signature RS256/reject/bad-signature ES256/reject/bad-signature EdDSA/reject/bad-signature", cases, " ")
  split("jwt-authorizer axum-jwt-auth aliri_tower", peers, " ")
  for (i = 1; i <= n; i++) {
    k = cases[i]
    ours = (k ~ /accept/) ? c["portcullis/" k "/cache-off/claims"] : c["portcullis/" k]
    line = sprintf("%-40s %10d", k, ours)
    for (j = 1; j <= 3; j++) {
      p = c[peers[j] "/" k]
      line = line sprintf(" %16s", p ? sprintf("%d (%.2f×)", p, p / ours) : "—")
    }
    print line
  }
}
