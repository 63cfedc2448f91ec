-- trailsight Insights as Parquet, for Athena (engine version 3) and the Glue Data Catalog.
--
-- One row per Insight record (Start or End), read from the tree trailsight writes under
-- OUT/insights/account=ACCOUNT/region=REGION/date=YYYY-MM-DD/part-UUID.parquet.
-- Field by field, with units: schemas/insights-parquet.md. A test parses this file and compares
-- its columns and types with the Parquet schema the code writes, column for column.
--
-- Before running it, replace:
--   s3://amzn-s3-demo-bucket/trailsight/   the S3 location you gave as --out (keep insights/)
--   111122223333,444455556666              your account IDs (or use the 'injected' type, below)
-- and trim the region list to the regions you analyse if you like.
--
-- Partition projection: Athena computes the partitions from the properties below, so there is
-- no MSCK REPAIR TABLE or ALTER TABLE ADD PARTITION to run after each trailsight run. A day
-- without Insights has no file and simply returns no rows. With many accounts, use
--   'projection.account.type' = 'injected'
-- instead of the enum (and drop 'projection.account.values'); every query must then name the
-- account(s) in its WHERE clause. `date` is a reserved word in DDL, hence the backticks; in
-- queries write "date".
CREATE EXTERNAL TABLE IF NOT EXISTS trailsight_insights (
  eventversion STRING,
  eventtime TIMESTAMP,
  awsregion STRING,
  eventid STRING,
  eventtype STRING,
  recipientaccountid STRING,
  sharedeventid STRING,
  insightdetails STRUCT<
    state: STRING,
    eventsource: STRING,
    eventname: STRING,
    insighttype: STRING,
    errorcode: STRING,
    sourceeventcategory: STRING,
    insightcontext: STRUCT<
      statistics: STRUCT<
        baseline: STRUCT<average: DOUBLE>,
        insight: STRUCT<average: DOUBLE>,
        insightduration: BIGINT,
        baselineduration: BIGINT>,
      attributions: ARRAY<STRUCT<
        attribute: STRING,
        insight: ARRAY<STRUCT<value: STRING, average: DOUBLE>>,
        baseline: ARRAY<STRUCT<value: STRING, average: DOUBLE>>>>>>,
  eventcategory STRING,
  eventtime_iso STRING,
  state STRING,
  eventsource STRING,
  eventname STRING,
  insighttype STRING,
  errorcode STRING,
  baselineaverage DOUBLE,
  insightaverage DOUBLE,
  insightduration BIGINT,
  baselineduration BIGINT,
  sourceeventcategory STRING,
  callratescope STRING
)
PARTITIONED BY (
  account STRING,
  region STRING,
  `date` STRING
)
STORED AS PARQUET
LOCATION 's3://amzn-s3-demo-bucket/trailsight/insights/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.account.type' = 'enum',
  'projection.account.values' = '111122223333,444455556666',
  'projection.region.type' = 'enum',
  'projection.region.values' = 'us-east-1,us-east-2,us-west-1,us-west-2,af-south-1,ap-east-1,ap-east-2,ap-south-1,ap-south-2,ap-southeast-1,ap-southeast-2,ap-southeast-3,ap-southeast-4,ap-southeast-5,ap-southeast-7,ap-northeast-1,ap-northeast-2,ap-northeast-3,ca-central-1,ca-west-1,eu-central-1,eu-central-2,eu-west-1,eu-west-2,eu-west-3,eu-south-1,eu-south-2,eu-north-1,il-central-1,me-south-1,me-central-1,mx-central-1,sa-east-1',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = '2019-01-01,NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://amzn-s3-demo-bucket/trailsight/insights/account=${account}/region=${region}/date=${date}'
);
