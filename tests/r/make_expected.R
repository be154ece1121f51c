# Reference values from R's survey package for the analysis engine.
#
# Usage (from the repository root):  Rscript tests/r/make_expected.R [tests/r]
# Reads tests/r/cases/<case>/{responses,volumes,units,params}.csv and writes
# tests/r/expected/<case>.csv: one row per (level, domain, quantity) with n,
# design df, estimate, SE, Korn-Graubard ("beta") and "xlogit" intervals.
#
# The design is the one of METHODOLOGY section 4:
#   svydesign(ids=~1, strata=~cell, weights=~w, fpc=~N_cell), lonely.psu "adjust";
# cells, weights and the period's volumes are derived here independently of the
# Python code: cell = (unit, stratum) when the volume table has it, else the
# unit's "_all" cell; N pro rata for partial overlap; w = N/n; a cell with
# n > N is a census (N := n); a unit without volume has w = 1 and no FPC.
suppressMessages(library(survey))
options(survey.lonely.psu = "adjust")

args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args) >= 1) args[1] else "tests/r"
elements <- c("access", "procedure", "staff", "result", "feedback")
items <- c("overall", elements)

read_params <- function(dir) {
  p <- read.csv(file.path(dir, "params.csv"), colClasses = "character")
  setNames(p$value, p$key)
}

volumes_in_period <- function(v, first, last) {
  s <- as.Date(v$period_start); e <- as.Date(v$period_end)
  days <- as.numeric(e - s) + 1
  ov <- pmax(0, as.numeric(pmin(e, last) - pmax(s, first)) + 1)
  v$N <- v$transactions * ov / days
  v <- v[ov > 0, , drop = FALSE]
  v$stratum[is.na(v$stratum) | v$stratum == ""] <- "_all"
  aggregate(N ~ unit_code + stratum, data = v, FUN = sum)
}

# Linear combination sum(coefs * num_i/den_i) over one domain: svyratio + svycontrast.
lincomb <- function(des_d, nums, dens, coefs) {
  K <- length(nums)
  r <- svyratio(as.formula(paste("~", paste(nums, collapse = "+"))),
                as.formula(paste("~", paste(dens, collapse = "+"))), des_d, covmat = TRUE)
  cvec <- rep(0, K * K)
  cvec[(seq_len(K) - 1) * (K + 1) + 1] <- coefs
  ct <- svycontrast(r, cvec)
  c(est = as.numeric(coef(ct)), se = as.numeric(SE(ct)))
}

# Key drivers (analysis/drivers.py): svyglm of overall satisfaction on the elements' satisfaction, the
# complete responses of each domain as a domain of the full design (strata, weights and FPC kept).
drivers_case <- function(des, r, levels) {
  complete <- rowSums(is.na(as.matrix(r[, items]))) == 0
  f <- as.formula(paste("s_overall ~", paste(paste0("s_", elements), collapse = " + ")))
  out <- list()
  for (lv in names(levels)) {
    dom <- levels[[lv]]
    for (d in sort(unique(dom))) {
      in_d <- complete & dom == d
      m <- svyglm(f, design = subset(des, in_d), family = quasibinomial(),
                  control = glm.control(epsilon = 1e-14, maxit = 100))
      out[[length(out) + 1]] <- data.frame(level = lv, domain = d, term = c("intercept", elements),
                                           n = sum(in_d), coef = as.numeric(coef(m)), se = as.numeric(SE(m)))
    }
  }
  do.call(rbind, out)
}

one_case <- function(dir) {
  prm <- read_params(dir)
  r <- read.csv(file.path(dir, "responses.csv"), colClasses = "character", na.strings = NULL)
  num_cols <- setdiff(names(r), c("response_id", "unit_code", "submitted_at", "channel", "instrument",
                                  "stratum", "excluded", "age_group"))
  for (c in num_cols) r[[c]] <- suppressWarnings(as.numeric(ifelse(r[[c]] == "", NA, r[[c]])))
  ts <- as.POSIXct(sub("Z$", "", r$submitted_at), format = "%Y-%m-%dT%H:%M:%S", tz = "UTC")
  start <- as.POSIXct(prm[["start_utc"]], tz = "UTC"); end <- as.POSIXct(prm[["end_utc"]], tz = "UTC")
  keep <- ts >= start & ts < end & r$excluded != "1" & r$age_group != "under_18"
  r <- r[keep, , drop = FALSE]
  r$stratum[r$stratum == ""] <- "_all"
  vol_file <- file.path(dir, "volumes.csv")
  use_vol <- file.exists(vol_file) && prm[["weights_from"]] == "volumes"
  if (use_vol) {
    v <- read.csv(vol_file, colClasses = c(transactions = "numeric"), stringsAsFactors = FALSE)
    vol <- volumes_in_period(v, as.Date(prm[["first"]]), as.Date(prm[["last"]]))
    vkey <- paste(vol$unit_code, vol$stratum, sep = "|")
    has <- paste(r$unit_code, r$stratum, sep = "|") %in% vkey
    r$cell <- paste(r$unit_code, ifelse(has, r$stratum, "_all"), sep = "|")
    Nrec <- vol$N[match(r$cell, vkey)]
  } else {
    r$cell <- paste(r$unit_code, "_all", sep = "|")
    Nrec <- rep(NA_real_, nrow(r))
  }
  n_cell <- ave(rep(1, nrow(r)), r$cell, FUN = sum)
  r$n_cell <- n_cell
  r$Ncell <- ifelse(is.na(Nrec), Inf, pmax(Nrec, n_cell))
  r$w <- ifelse(is.na(Nrec), 1, r$Ncell / n_cell)
  if (prm[["weights_from"]] == "column") {   # explicit weights, used as is, no FPC
    r$w <- r$weight
    r$Ncell <- Inf
  }

  # ratio variables: s_<var> satisfied / yes, a_<var> answered
  crit <- grep("^access_c[0-9]+$", names(r), value = TRUE)
  vars <- c(items, crit)
  for (k in vars) {
    thr <- if (k %in% items) 4 else 1
    r[[paste0("s_", k)]] <- ifelse(is.na(r[[k]]), 0, as.numeric(r[[k]] >= thr))
    r[[paste0("a_", k)]] <- as.numeric(!is.na(r[[k]]))
  }
  groups <- setNames(lapply(elements, function(e) e), elements)
  if (prm[["element_mode"]] == "criteria" && length(crit)) groups$access <- crit

  # domains: unit, parent kinds, root. The tree as of `as_of` (default: the period's last day): per code the
  # version valid then (valid_from <= d < valid_to), else its latest version. With map_successors the
  # domains follow successor_code from a unit not valid then; the cells above stay the collecting unit's.
  levels <- list(unit = r$unit_code)
  ufile <- file.path(dir, "units.csv")
  if (file.exists(ufile)) {
    u <- read.csv(ufile, colClasses = "character")
    asof <- as.Date(if (!is.na(prm["as_of"])) prm[["as_of"]] else prm[["last"]])
    vf <- as.Date(ifelse(u$valid_from == "", "1900-01-01", u$valid_from))
    vt <- as.Date(ifelse(u$valid_to == "", "2262-01-01", u$valid_to))
    u$active <- vf <= asof & asof < vt
    u <- u[order(u$code, !u$active, -as.numeric(vf)), ]
    u <- u[!duplicated(u$code), ]
    if (isTRUE(prm["map_successors"] == "1")) {
      mapped <- r$unit_code
      repeat {
        i <- match(mapped, u$code)
        step <- !is.na(i) & !u$active[i] & u$successor_code[i] != ""
        if (!any(step)) break
        mapped[step] <- u$successor_code[i][step]
      }
      levels$unit <- mapped
    }
    cur <- levels$unit
    repeat {
      par <- u$parent_code[match(cur, u$code)]
      if (all(is.na(par) | par == "")) break
      kind <- u$kind[match(par[!is.na(par) & par != ""][1], u$code)]
      levels[[kind]] <- par
      cur <- par
    }
  }
  levels[["root"]] <- rep("_root", nrow(r))
  des <- svydesign(ids = ~1, strata = ~cell, weights = ~w, fpc = ~Ncell, data = r)
  if ("drivers_level" %in% names(prm)) {
    drv <- drivers_case(des, r, levels[c(prm[["drivers_level"]], "root")])
    write.csv(drv, file.path(root, "expected", paste0(basename(dir), ".drivers.csv")), row.names = FALSE)
  }

  out <- list()
  for (lv in names(levels)) {
    dom <- levels[[lv]]
    des$variables$dom <- dom
    for (d in sort(unique(dom))) {
      in_d <- dom == d
      avail <- c()
      for (e in c(names(groups), "overall")) {
        g <- if (e == "overall") "overall" else groups[[e]]
        answered <- rowSums(as.matrix(r[, paste0("a_", g), drop = FALSE])) > 0
        sub <- in_d & answered
        res <- c(n = sum(sub), df = NA, est = NA, se = NA, beta_low = NA, beta_high = NA,
                 xlogit_low = NA, xlogit_high = NA, n_kish = NA, f = NA)
        if (sum(sub) > 0) {
          res[c("n_kish", "f")] <- kish_f(r, sub)
          des_e <- subset(des, in_d & answered)
          res["df"] <- degf(des_e)
          if (length(g) == 1) {
            m <- svymean(as.formula(paste0("~s_", g)), des_e)
            res["est"] <- coef(m); res["se"] <- SE(m)
            if (res["se"] > 1e-9 && res["df"] > 0) {
              b <- svyciprop(as.formula(paste0("~s_", g)), des_e, method = "beta")
              x <- svyciprop(as.formula(paste0("~s_", g)), des_e, method = "xlogit")
              res[c("beta_low", "beta_high")] <- attr(b, "ci")
              res[c("xlogit_low", "xlogit_high")] <- attr(x, "ci")
            }
          } else {
            ok <- g[colSums(as.matrix(r[sub, paste0("a_", g), drop = FALSE])) > 0]
            lc <- lincomb(des_e, paste0("s_", ok), paste0("a_", ok), rep(1 / length(ok), length(ok)))
            res["est"] <- lc["est"]; res["se"] <- lc["se"]
          }
          if (e != "overall") avail <- c(avail, e)
        }
        out[[length(out) + 1]] <- data.frame(level = lv, domain = d, quantity = e, t(res))
      }
      # satisfaction index: equal element weights renormalised over available elements
      nums <- c(); dens <- c(); coefs <- c()
      for (e in avail) {
        g <- groups[[e]]
        okg <- g[colSums(as.matrix(r[in_d, paste0("a_", g), drop = FALSE])) > 0]
        nums <- c(nums, paste0("s_", okg)); dens <- c(dens, paste0("a_", okg))
        coefs <- c(coefs, rep(1 / length(avail) / length(okg), length(okg)))
      }
      des_d <- subset(des, in_d)
      lc <- lincomb(des_d, nums, dens, coefs)
      df <- degf(des_d)
      res <- c(n = sum(in_d), df = df, est = lc[["est"]], se = lc[["se"]], beta_low = NA, beta_high = NA,
               xlogit_low = NA, xlogit_high = NA, kish_f(r, in_d))
      if (lc[["se"]] > 1e-9) {
        h <- qt(0.975, max(df, 1)) * lc[["se"]] / (lc[["est"]] * (1 - lc[["est"]]))
        lg <- log(lc[["est"]] / (1 - lc[["est"]]))
        res[c("xlogit_low", "xlogit_high")] <- plogis(c(lg - h, lg + h))
      }
      out[[length(out) + 1]] <- data.frame(level = lv, domain = d, quantity = "index", t(res))
    }
  }
  res <- do.call(rbind, out)
  if (isTRUE(prm["rollup"] == "mean_of_units")) res <- mean_of_units(res, levels)
  res[, setdiff(names(res), c("n_kish", "f"))]
}

# n_kish over the domain's rows and its sampling fraction f = (eligible responses in the cells it falls in) /
# (their transactions), 0 when a cell's N is unknown: the inputs of the Var = 0 rule (METHODOLOGY 4).
kish_f <- function(r, sel) {
  w <- r$w[sel]
  cells <- unique(r$cell[sel])
  Nc <- r$Ncell[match(cells, r$cell)]
  nc <- r$n_cell[match(cells, r$cell)]
  c(n_kish = sum(w)^2 / sum(w^2), f = if (all(is.finite(Nc))) sum(nc) / sum(Nc) else 0)
}

# The working variance of a row (METHODOLOGY 4): SE^2 where SE > 1e-9, else the square of the SE of a normal
# interval as wide as the published Var = 0 interval (Wilson, n_eff = n_kish / (1 - f), t on max(df, 1)).
working_var <- function(rows) {
  p <- rows$est
  n_eff <- ifelse(rows$f >= 1, Inf, rows$n_kish / (1 - pmin(rows$f, 1)))
  tq <- qt(0.975, pmax(rows$df, 1))
  a <- ifelse(is.infinite(n_eff), 0, tq^2 / n_eff)
  centre <- (p + a / 2) / (1 + a)
  half <- sqrt(pmax(a * p * (1 - p) + a^2 / 4, 0)) / (1 + a)
  width <- pmin(centre + half, 1) - pmax(centre - half, 0)
  ifelse(rows$se > 1e-9, rows$se^2, (width / (2 * qnorm(0.975)))^2)
}

# mean_of_units roll-up (METHODOLOGY 6): bottom-up, a parent's value is the plain mean of its members'
# values (the domains one level down that fall in it: every unit here is a leaf at the same depth and no
# parent has responses of its own), Var = sum of the members' working variances / U^2. n and df stay those
# of the parent's pooled domain; R defines no interval for it.
mean_of_units <- function(res, levels) {
  lv <- names(levels)
  for (k in seq_along(lv)[-1]) {
    pairs <- unique(data.frame(child = levels[[k - 1]], parent = levels[[k]]))
    for (i in which(res$level == lv[k])) {
      kids <- pairs$child[pairs$parent == res$domain[i]]
      m <- res[res$level == lv[k - 1] & res$domain %in% kids & res$quantity == res$quantity[i] & !is.na(res$est), ]
      if (nrow(m) == 0) next
      res$est[i] <- mean(m$est)
      res$se[i] <- sqrt(sum(working_var(m))) / nrow(m)
      res[i, c("beta_low", "beta_high", "xlogit_low", "xlogit_high")] <- NA
    }
  }
  res
}

dir.create(file.path(root, "expected"), showWarnings = FALSE)
cases <- commandArgs(trailingOnly = TRUE)[-1]   # optional: only these cases
for (dir in list.dirs(file.path(root, "cases"), recursive = FALSE)) {
  if (length(cases) && !(basename(dir) %in% cases)) next
  case <- basename(dir)
  res <- suppressWarnings(one_case(dir))
  write.csv(res, file.path(root, "expected", paste0(case, ".csv")), row.names = FALSE)
  cat(case, nrow(res), "rows\n")
}
cat("survey", as.character(packageVersion("survey")), "\n")
