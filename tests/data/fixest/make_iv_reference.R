# IV reference output from R fixest for tests/test_iv_reference.py (next to make_reference.R,
# same versions and build: its header). CI reads the files; it never runs R. Re-run from the
# project root:
#
#   R_LIBS=/path/to/Rlib Rscript tests/data/fixest/make_iv_reference.R
#
# Writes, next to this script: the panel (iv_panel.csv), one row per case (iv_models.csv),
# the second stage's coefficients (iv_coefficients.csv) and covariance (iv_vcov.csv, long),
# the first stages' coefficients (iv_first_stage.csv) and fixest's
# fitstat(fit, ~ ivf + ivwald + wh + sargan + kpr) (iv_fitstat.csv, one row per statistic:
# stat, p, df1, df2, vcov). Estimates use fixest's defaults except fixef.rm = "singleton",
# fixef.tol = 3e-12 and one thread, as in make_reference.R.

suppressMessages({
  library(fixest)
  library(data.table)
})
stopifnot(packageVersion("fixest") == "0.12.2")
setFixest_nthreads(1)
setFixest_notes(FALSE)

here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))
num <- function(x) ifelse(is.na(x), NA_character_, sprintf("%.17g", x))

# --- the panel ----------------------------------------------------------------------------------
# 120 firms, 2004-2013, each year seen with probability 0.7; 12 provinces. An unobserved shock u
# moves both the regressor x and the outcome y (x is endogenous); two instruments z1, z2 shift x
# only (z2 weakly); y has an inverted U in x. Values rounded to 6 decimals (the CSV holds them exactly).
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20261208)
grid <- CJ(firm_id = 1:120, year = 2004:2013)
grid <- grid[runif(.N) < 0.7]
grid[, province := 11L + firm_id %% 12L]
alpha <- rnorm(120)
grid[, `:=`(u = rnorm(.N), z1 = rnorm(.N), z2 = rnorm(.N))]
grid[, z1 := round(z1 + 0.2 * alpha[firm_id], 6)]
grid[, z2 := round(z2, 6)]
grid[, x := round(2 + 0.8 * z1 + 0.25 * z2 + 0.6 * u + 0.3 * alpha[firm_id] + 0.05 * (year - 2004) + rnorm(.N, 0, 0.5), 6)]
grid[, scale := round(10 + 0.5 * alpha[firm_id] + rnorm(.N), 6)]
grid[, age := round(rnorm(.N, 2, 0.5), 6)]
het <- exp(0.3 * grid$z1)  # heteroskedastic errors
grid[, y := round(0.5 * x - 0.1 * x^2 + 0.03 * scale - 0.02 * age + 0.5 * alpha[firm_id] + 0.4 * u
                  + 0.02 * (year - 2004) + het * rnorm(.N, 0, 0.3), 6)]
grid[, u := NULL]
setorder(grid, firm_id, year)
fwrite(grid, file.path(here, "iv_panel.csv"))

dat <- fread(file.path(here, "iv_panel.csv"))
dat[, `:=`(x_sq = x^2, z1_sq = z1^2)]

# --- the cases ----------------------------------------------------------------------------------
models <- list(); coefficients <- list(); vcovs <- list(); first <- list(); stats <- list()

eqexp_term <- function(term) sub("^l\\((\\w+), (\\d)\\)$", "L\\2_\\1", term)  # fixest's l(x, 1) is eqexp's L1_x

record <- function(case, fit, identification) {
  v <- fit$cov.scaled
  ct <- coeftable(fit)
  terms <- eqexp_term(sub("^fit_", "", rownames(ct)))
  models[[case]] <<- data.table(case = case, formula = deparse1(formula(fit, "full")), identification = identification,
                                n_obs = nobs(fit), vcov_type = attr(v, "type"), dof_k = attr(v, "dof.K"), df_t = attr(v, "df.t"),
                                n_clusters = if (is.null(attr(v, "G"))) NA_integer_ else attr(v, "G"),
                                r2 = num(r2(fit, "r2")), r2_within = num(r2(fit, "wr2")))
  coefficients[[case]] <<- data.table(case = case, term = terms, estimate = num(ct[, 1]), std_error = num(ct[, 2]),
                                      statistic = num(ct[, 3]), p_value = num(ct[, 4]))
  vcovs[[case]] <<- data.table(case = case, row = rep(terms, times = length(terms)),
                               column = rep(terms, each = length(terms)), value = num(as.vector(v)))
  stages <- summary(fit, stage = 1)
  if (!inherits(stages, "fixest_multi")) stages <- list(stages)
  for (s in stages) {
    fs <- coeftable(s)
    endogenous <- eqexp_term(deparse1(s$fml[[2]]))
    first[[paste(case, endogenous)]] <<- data.table(case = case, endogenous = endogenous, term = eqexp_term(rownames(fs)),
                                                    estimate = num(fs[, 1]), std_error = num(fs[, 2]))
  }
  wanted <- c("ivf", "ivwald", "wh", "kpr", if (identification == "over") "sargan")
  for (name in wanted) {
    # fixest 0.12.2's kpr stops on some models ("requires numeric/complex matrix"): recorded as the error
    found <- tryCatch(fitstat(fit, as.formula(paste("~", name)), simplify = FALSE), error = function(e) conditionMessage(e))
    if (is.character(found)) {
      stats[[paste(case, name)]] <<- data.table(case = case, statistic = name, stat = NA, p = NA, df1 = NA, df2 = NA,
                                                vcov = paste("error:", gsub("\n", " ", found)))
      next
    }
    for (key in names(found)) {
      s <- found[[key]]
      stats[[paste(case, key)]] <<- data.table(case = case, statistic = key, stat = num(as.numeric(s$stat)), p = num(as.numeric(s$p)),
                                               df1 = num(if (is.null(s$df1)) s$df else s$df1),
                                               df2 = num(if (is.null(s$df2)) NA else s$df2),
                                               vcov = if (is.null(s$vcov)) "" else as.character(s$vcov))
    }
  }
}

est <- function(fml, vcov) feols(fml, dat, vcov = vcov, fixef.rm = "singleton", fixef.tol = 3e-12)

fixed_effects <- list(firm = "firm_id", firm_year = "firm_id + year")
vcov_types <- list(iid = "iid", hetero = "hetero", firm = ~firm_id, firm_year = ~firm_id + year)
instruments <- list(just = "x ~ z1", over = "x ~ z1 + z2", quadratic = "x + x_sq ~ z1 + z1_sq")
for (fe in names(fixed_effects)) for (vc in names(vcov_types)) for (iv in names(instruments)) {
  fml <- as.formula(paste("y ~ scale + age |", fixed_effects[[fe]], "|", instruments[[iv]]))
  record(paste0("fe=", fe, ";vcov=", vc, ";iv=", iv), est(fml, vcov_types[[vc]]), if (iv == "over") "over" else "just")
}

# lags (fixest's l() on panel.id: calendar years, no lag after a gap) and a subset, two-way clustered
lagged <- feols(y ~ scale + age | firm_id + year | l(x, 1) ~ l(z1, 1) + l(z2, 1), dat, panel.id = ~firm_id + year,
                vcov = ~firm_id + year, fixef.rm = "singleton", fixef.tol = 3e-12)
record("lag1;vcov=firm_year", lagged, "over")
record("year!=2010;vcov=firm", feols(y ~ scale + age | firm_id + year | x ~ z1 + z2, dat, subset = dat$year != 2010,
                                     vcov = ~firm_id, fixef.rm = "singleton", fixef.tol = 3e-12), "over")

fwrite(rbindlist(models), file.path(here, "iv_models.csv"))
fwrite(rbindlist(coefficients), file.path(here, "iv_coefficients.csv"))
fwrite(rbindlist(vcovs), file.path(here, "iv_vcov.csv"))
fwrite(rbindlist(first), file.path(here, "iv_first_stage.csv"))
fwrite(rbindlist(stats), file.path(here, "iv_fitstat.csv"))
cat("wrote", length(models), "IV cases to", here, "\n")
