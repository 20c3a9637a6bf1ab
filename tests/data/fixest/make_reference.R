# Reference output from R fixest for tests/test_fixest_reference.py.
#
# Writes, next to this script: the small panel the tests use (panel.csv), fixest's lags of it
# (lags.csv), fixest's estimates (models.csv: one row per case; coefficients.csv: one row per
# case and term; vcov.csv: every case's covariance matrix, long) and, for every case with a
# squared treatment, the Lind-Mehlum test of its authors' R package utest on fixest's estimates
# (utest.csv). Numbers are written with 17 significant digits, so they read back as the doubles
# R computed. CI reads these files; it never runs R.
#
# Made with R 4.2.2 (Debian bookworm) and fixest 0.12.2 built from its public sources:
# GitHub lrberge/fixest commit dbe56c5 (0.12.2), lrberge/dreamerr ee0086e (1.5.0),
# lrberge/stringmagic 87b187d (1.2.0), data.table 1.14.8 (Debian); and utest 0.3.0 by Lind and
# Mehlum, GitHub jotlind/utest commit d920652 (pure R: R CMD INSTALL -l Rlib utest). How to build
# fixest: ../shared/peers/README.md, section "R fixest on this machine". Re-run from the project root:
#
#   R_LIBS=/path/to/Rlib Rscript tests/data/fixest/make_reference.R
#
# Every estimate uses fixest's defaults except: fixef.rm = "singleton" (eqexp removes
# singletons; fixest's default keeps them), fixef.tol = 3e-12 (the smallest fixest accepts is
# 2.2e-12; the default 1e-6 would limit the agreement to about 1e-7) and one thread.
# fixest's default small-sample correction is the one eqexp follows:
# ssc(adj = TRUE, fixef.K = "nested", cluster.adj = TRUE, cluster.df = "min", t.df = "min").

suppressMessages({
  library(fixest)
  library(data.table)
  library(utest)
})
stopifnot(packageVersion("fixest") == "0.12.2")
setFixest_nthreads(1)
setFixest_notes(FALSE)

here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))
num <- function(x) ifelse(is.na(x), NA_character_, sprintf("%.17g", x))  # full precision, as text

# --- the panel ----------------------------------------------------------------------------------
# 80 firms, 2004-2013, each year seen with probability 0.7 (gaps: no lag after a missing year);
# 10 provinces (11-20) in three regions; firms 1-3 move one province up from 2010 (so firms are
# not nested in provinces); market varies mostly by province-year; an inverted U in market;
# some missing scale and quality. Added by hand: four firms seen once (singletons in any firm
# model) and two firms in province 99 (region West), a chain that only an iterated singleton
# removal clears (see "singletons" below). Values are rounded to 6 decimals so the CSV holds them exactly.
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20240515)
n_firms <- 80
grid <- CJ(firm_id = 1:n_firms, year = 2004:2013)
grid <- grid[runif(.N) < 0.7]
grid[, province := 11L + firm_id %% 10L + (firm_id <= 3L & year >= 2010L)]
grid <- rbind(grid, data.table(firm_id = 81:84, year = c(2005L, 2007L, 2009L, 2011L), province = c(11L, 13L, 15L, 17L)),
              data.table(firm_id = c(85L, 85L, 86L), year = c(2004L, 2005L, 2005L), province = 99L))
grid[, region := fifelse(province <= 14L, "East", fifelse(province <= 17L, "Central", "West"))]
grid[, soe := as.integer(firm_id %% 7L == 0L)]
shock <- matrix(rnorm(100 * 10, 0, 0.3), 100, 10)
alpha <- rnorm(90)
grid[, market := round(4 + shock[cbind(province, year - 2003L)] + rnorm(.N, 0, 0.05), 6)]
grid[, scale := round(10 + 0.5 * alpha[firm_id] + rnorm(.N), 6)]
grid[, age := round(rnorm(.N, 2, 0.5), 6)]
grid[, quality := round(0.5 * market - 0.06 * market^2 + 0.02 * scale - 0.01 * age + 0.3 * alpha[firm_id]
                        + 0.01 * (year - 2004) + rnorm(.N, 0, 0.05), 6)]
grid[runif(.N) < 0.03 & firm_id <= n_firms, scale := NA]
grid[runif(.N) < 0.02 & firm_id <= n_firms, quality := NA]
setorder(grid, firm_id, year)
fwrite(grid, file.path(here, "panel.csv"))

# Everything below reads the file back, so fixest and eqexp start from the same text.
dat <- fread(file.path(here, "panel.csv"))
dat[, market_sq := market^2]
dat[, scale2 := 2 * scale]  # exactly collinear with scale
# fixest's own lags (calendar years: a firm seen in 2004 and 2006 has no L1 in 2006), built on
# the full panel, before any subset or split
lags <- panel(copy(dat), ~firm_id + year)
lags[, `:=`(L1_market = l(market, 1), L2_market = l(market, 2))]
stopifnot(identical(lags$firm_id, dat$firm_id), identical(lags$year, dat$year))
dat[, `:=`(L1_market = lags$L1_market, L1_market_sq = lags$L1_market^2)]
fwrite(data.table(firm_id = dat$firm_id, year = dat$year, L1_market = num(lags$L1_market), L2_market = num(lags$L2_market)),
       file.path(here, "lags.csv"))

# --- the cases ----------------------------------------------------------------------------------
models <- list()
coefficients <- list()
vcovs <- list()
utests <- list()

# fixest's term names in eqexp's grammar (terms.py): L{k}_x, x_sq
eqexp_term <- function(term) {
  term <- sub("^I\\(l\\((\\w+), (\\d)\\)\\^2\\)$", "L\\2_\\1_sq", term)
  sub("^l\\((\\w+), (\\d)\\)$", "L\\2_\\1", term)
}

record <- function(case, fit, sample = "all rows", note = "", lind_mehlum_test = TRUE) {
  v <- fit$cov.scaled
  ct <- coeftable(fit)
  terms <- eqexp_term(rownames(ct))
  x <- model.matrix(fit, type = "rhs")[, 1]  # the first regressor (the treatment) on the estimation sample
  models[[case]] <<- data.table(
    case = case, formula = deparse1(formula(fit, "full")), sample = sample, note = note,
    n_obs = nobs(fit), vcov_type = attr(v, "type"), dof_k = attr(v, "dof.K"), df_t = attr(v, "df.t"),
    n_clusters = if (is.null(attr(v, "G"))) NA_integer_ else attr(v, "G"),
    r2 = num(r2(fit, "r2")), r2_within = num(r2(fit, "wr2")), x_min = num(min(x)), x_max = num(max(x)),
    collinear = paste(fit$collin.var, collapse = " "))
  coefficients[[case]] <<- data.table(
    case = case, term = terms, estimate = num(ct[, 1]), std_error = num(ct[, 2]),
    statistic = num(ct[, 3]), p_value = num(ct[, 4]))
  vcovs[[case]] <<- data.table(case = case, row = rep(terms, times = length(terms)),
                               column = rep(terms, each = length(terms)), value = num(as.vector(v)))
  if (lind_mehlum_test && grepl("_sq$", terms[2])) utests[[case]] <<- lind_mehlum(case, fit, x)
}

# utest's uslopes() reads coefficients, df.residual and the treatment's column (model) from an
# lm-like object; fixest's t degrees of freedom (G - 1 when clustered) are Stata utest's e(df_r)
lind_mehlum <- function(case, fit, x) {
  vars <- names(coef(fit))[1:2]
  model <- list(coefficients = coef(fit), df.residual = attr(fit$cov.scaled, "df.t"), model = setNames(data.frame(x), vars[1]))
  slopes <- uslopes(model, vars, .vcov = fit$cov.scaled)
  test <- utest(model, vars, .vcov = fit$cov.scaled)
  trivial <- is.character(test$statistic)  # "Extremum outside interval - trivial failure to reject H0"
  data.table(case = case, method = test$method, x_min = num(slopes$interval[1]), x_max = num(slopes$interval[2]),
             slope_low = num(slopes$slope[1]), slope_high = num(slopes$slope[2]),
             t_low = num(slopes$tval[1]), t_high = num(slopes$tval[2]),
             p_low = num(slopes$pval[1]), p_high = num(slopes$pval[2]),
             trivial_failure = trivial, t = if (trivial) NA else num(test$statistic),
             p_value = if (trivial) NA else num(test$p.value))
}

est <- function(fml, data = dat, vcov = ~firm_id, ...) {
  feols(fml, data, vcov = vcov, fixef.rm = "singleton", fixef.tol = 3e-12, ...)
}

fixed_effects <- list(firm = ~firm_id, firm_year = ~firm_id + year)
vcov_types <- list(iid = "iid", hetero = "hetero", firm = ~firm_id, province = ~province,
                   firm_year = ~firm_id + year, firm_province_year = ~firm_id + province^year)

# one and two fixed effects, every kind of standard error; the treatment, its square, controls
for (fe in names(fixed_effects)) {
  for (vc in names(vcov_types)) {
    fit <- est(xpd(quality ~ market + market_sq + scale + age | ..fe, ..fe = fixed_effects[[fe]]), vcov = vcov_types[[vc]])
    record(paste0("fe=", fe, ";vcov=", vc), fit)
  }
}
baseline <- quality ~ market + market_sq + scale + age | firm_id + year
# Table 4 column (1): the treatment and its square, no controls
record("no_controls", est(quality ~ market + market_sq | firm_id + year))

# lags with gaps: fixest's l() in the formula, on the panel declared by panel.id
record("lag1", est(quality ~ l(market, 1) + I(l(market, 1)^2) + scale + age | firm_id + year, panel.id = ~firm_id + year))
record("lag2", est(quality ~ l(market, 2) + I(l(market, 2)^2) + scale + age | firm_id + year, panel.id = ~firm_id + year))

# group subsets (eqexp's hetero groups and sample queries) as fixest's subset =. The lagged
# models use the full panel's lags built above, as eqexp builds lags before any split (fixest
# 0.12.2 stops with an error on l() in the formula together with subset =).
for (region in sort(unique(dat$region))) {
  in_region <- dat$region == region
  query <- paste0("region == '", region, "'")
  record(paste0("region=", region), est(baseline, subset = in_region), query)
  record(paste0("lag1;region=", region), est(quality ~ L1_market + L1_market_sq + scale + age | firm_id + year, subset = in_region), query)
}
record("year!=2010", est(baseline, subset = dat$year != 2010), "year != 2010")
# split = estimates the same groups, but fixest 0.12.2 does not pass fixef.tol on to the split
# samples: whatever fixef.tol says, they equal the estimates at its default (1e-6), whose SEs
# are up to 6e-8 (relative) off. Kept to show it.
fits <- est(baseline, split = ~region)
for (i in seq_along(fits)) {
  region <- models(fits)$sample[i]
  record(paste0("split;region=", region), fits[[i]], paste0("region == '", region, "'"), "split = ~region", lind_mehlum_test = FALSE)
}

# singletons: fixest removes them in one round (src/quf.cpp: "I don't reiterate the observation
# removal"), eqexp (as reghdfe and pyfixest) until none is left. In province 99, firm 86 (seen
# once) shares 2005 with firm 85, and firm 85's 2004 is alone in its province-year: one round
# removes both, which leaves firm 85's 2005 alone in its firm and its province-year. fixest
# keeps it; fixest re-run on the rows it kept, until nothing changes, removes it too.
chain <- quality ~ market + scale | firm_id + province^year
fit <- est(chain)
record("singletons=one_round", fit, note = "fixest's own removal: one round")
rows <- dat
repeat {
  rows <- rows[obs(fit)]
  again <- est(chain, data = rows)
  if (nobs(again) == nobs(fit)) break
  fit <- again
}
record("singletons=iterated", again, note = "fixest re-run on the rows it kept until no singleton is left")

# collinear regressors: fixest drops them (collin.var) and estimates the rest; eqexp refuses
# the model and names them
record("collinear=scale2", est(quality ~ market + scale + scale2 + age | firm_id + year), note = "scale2 = 2 * scale")
record("collinear=soe", est(quality ~ market + soe + scale + age | firm_id + year), note = "soe is constant within firm")

# --- write --------------------------------------------------------------------------------------
fwrite(rbindlist(models), file.path(here, "models.csv"))
fwrite(rbindlist(coefficients), file.path(here, "coefficients.csv"))
fwrite(rbindlist(vcovs), file.path(here, "vcov.csv"))
fwrite(rbindlist(utests), file.path(here, "utest.csv"))
writeLines(c(R.version.string, paste("fixest", packageVersion("fixest")), paste("data.table", packageVersion("data.table")),
             paste("dreamerr", packageVersion("dreamerr")), paste("stringmagic", packageVersion("stringmagic")),
             paste("utest", packageVersion("utest"))),
           file.path(here, "versions.txt"))
cat("wrote", length(models), "cases to", here, "\n")
