DROP TABLE usage_log;
