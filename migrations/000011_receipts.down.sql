DROP VIEW sends;
DROP TABLE receipts; -- and every partition
