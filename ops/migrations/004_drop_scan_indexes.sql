-- The baseline recompute reads the daily rollup (002) instead of scanning transactions by
-- category/merchant and date: these two indexes only slowed every insert down.
DROP INDEX IF EXISTS transactions_category_date_idx;
DROP INDEX IF EXISTS transactions_merchant_date_idx;
