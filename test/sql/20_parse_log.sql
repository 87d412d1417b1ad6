-- calo_recon.parse_log: the two sample export files (embedded verbatim: the
-- regress suite cannot gunzip), every kind, exact numbers, metadata forms,
-- balance error links and malformed events.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

CREATE TEMP TABLE sample_log (name text PRIMARY KEY, log text NOT NULL);
INSERT INTO sample_log VALUES
('2023-12-12', $log$2023-12-12T12:00:00.029Z INIT_START Runtime Version: nodejs:20.v14	Runtime Version ARN: arn:aws:lambda:us-east-1::runtime:0fd630f1f29d0da9953f48f1a09f76b50cb1e29c658cda1495e60af593bd04cf

2023-12-12T12:00:00.066Z START RequestId: 72e6cc3a-babc-4d20-97ee-05cde00902c7 Version: $LATEST

2023-12-12T12:00:00.132Z 2023-12-12T12:00:00.132Z	72e6cc3a-babc-4d20-97ee-05cde00902c7	INFO	Processing message 1e398f10-12bd-4ace-baec-bd389be4bcfc

2023-12-12T12:00:00.186Z 2023-12-12T12:00:00.186Z	72e6cc3a-babc-4d20-97ee-05cde00902c7	INFO	Start syncing the balance {
  transaction: {
    id: '01H8JT97KB6CQ643DZVMXXQKFB',
    userId: '6513270e-269e-4d37-b2a7-4de452e6b438',
    currency: 'BHD',
    amount: 5,
    vat: 0,
    oldBalance: 87.5,
    newBalance: 82.5
  }
}

2023-12-12T12:00:00.208Z 2023-12-12T12:00:00.208Z	72e6cc3a-babc-4d20-97ee-05cde00902c7	INFO	SubscriptionBalanceUpdated event published

2023-12-12T12:00:00.252Z 2023-12-12T12:00:00.252Z	72e6cc3a-babc-4d20-97ee-05cde00902c7	ERROR	Subscription balance and payment balance are not in sync {
  userId: '6513270e-269e-4d37-b2a7-4de452e6b438',
  subscriptionBalance: 82.5,
  paymentBalance: 499.5
}

2023-12-12T12:00:00.272Z {"_aws":{"Timestamp":1702384510307,"CloudWatchMetrics":[{"Namespace":"apiService","Dimensions":[["service"]],"Metrics":[{"Name":"subBalanceDiscrapancy","Unit":"Count"}]}]},"service":"syncBalanceSQS","subBalanceDiscrapancy":1,"userId":"6513270e-269e-4d37-b2a7-4de452e6b438","action":"DELIVERY_DEDUCTION"}

2023-12-12T12:00:00.335Z END RequestId: 72e6cc3a-babc-4d20-97ee-05cde00902c7

2023-12-12T12:00:00.345Z REPORT RequestId: 72e6cc3a-babc-4d20-97ee-05cde00902c7	Duration: 235.15 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2023-12-12T12:00:00.367Z START RequestId: 14a0f9e7-7f1b-403c-9f15-82b0eab477d2 Version: $LATEST

2023-12-12T12:00:00.385Z 2023-12-12T12:00:00.385Z	14a0f9e7-7f1b-403c-9f15-82b0eab477d2	INFO	Processing message 4720771f-8ca8-4811-a6d2-287672fdf202

2023-12-12T12:00:00.441Z 2023-12-12T12:00:00.441Z	14a0f9e7-7f1b-403c-9f15-82b0eab477d2	INFO	Start syncing the balance {
  transaction: {
    id: '01HMNPZX45HY43KWJRP1XPA7Z3',
    userId: 'd23f0824-128b-4f33-8c5c-7fd0a6a3a450',
    currency: 'SAR',
    amount: 42,
    vat: 0,
    oldBalance: 120,
    newBalance: 78
  }
}

2023-12-12T12:00:00.512Z 2023-12-12T12:00:00.512Z	14a0f9e7-7f1b-403c-9f15-82b0eab477d2	INFO	SubscriptionBalanceUpdated event published

2023-12-12T12:00:00.548Z 2023-12-12T12:00:00.548Z	14a0f9e7-7f1b-403c-9f15-82b0eab477d2	ERROR	Subscription balance and payment balance are not in sync {
  userId: 'd23f0824-128b-4f33-8c5c-7fd0a6a3a450',
  subscriptionBalance: 78,
  paymentBalance: 495
}

2023-12-12T12:00:00.602Z {"_aws":{"Timestamp":1702384510307,"CloudWatchMetrics":[{"Namespace":"apiService","Dimensions":[["service"]],"Metrics":[{"Name":"subBalanceDiscrapancy","Unit":"Count"}]}]},"service":"syncBalanceSQS","subBalanceDiscrapancy":1,"userId":"d23f0824-128b-4f33-8c5c-7fd0a6a3a450","action":"DELIVERY_DEDUCTION"}

2023-12-12T12:00:00.648Z END RequestId: 14a0f9e7-7f1b-403c-9f15-82b0eab477d2

2023-12-12T12:00:00.668Z REPORT RequestId: 14a0f9e7-7f1b-403c-9f15-82b0eab477d2	Duration: 369.58 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2023-12-12T12:00:00.675Z START RequestId: 99c94309-570d-4195-9c24-42f9298cb3a5 Version: $LATEST

2023-12-12T12:00:00.744Z 2023-12-12T12:00:00.744Z	99c94309-570d-4195-9c24-42f9298cb3a5	INFO	Processing message 26b94c7f-9118-4b16-800f-49c81a358ca0

2023-12-12T12:00:00.757Z 2023-12-12T12:00:00.757Z	99c94309-570d-4195-9c24-42f9298cb3a5	INFO	Start syncing the balance {
  transaction: {
    id: '01HB9EE0ZBGJ09TQM83XSSSS6Y',
    userId: '9531985d-5d9d-49f8-9818-e811892f902b',
    currency: 'AED',
    amount: 5,
    vat: 0,
    oldBalance: 64,
    newBalance: 59
  }
}

2023-12-12T12:00:00.804Z 2023-12-12T12:00:00.804Z	99c94309-570d-4195-9c24-42f9298cb3a5	INFO	SubscriptionBalanceUpdated event published

2023-12-12T12:00:00.883Z 2023-12-12T12:00:00.883Z	99c94309-570d-4195-9c24-42f9298cb3a5	ERROR	Subscription balance and payment balance are not in sync {
  userId: '9531985d-5d9d-49f8-9818-e811892f902b',
  subscriptionBalance: 59,
  paymentBalance: 476
}

2023-12-12T12:00:00.887Z {"_aws":{"Timestamp":1702384510307,"CloudWatchMetrics":[{"Namespace":"apiService","Dimensions":[["service"]],"Metrics":[{"Name":"subBalanceDiscrapancy","Unit":"Count"}]}]},"service":"syncBalanceSQS","subBalanceDiscrapancy":1,"userId":"9531985d-5d9d-49f8-9818-e811892f902b","action":"DELIVERY_DEDUCTION"}

2023-12-12T12:00:00.897Z END RequestId: 99c94309-570d-4195-9c24-42f9298cb3a5

2023-12-12T12:00:00.917Z REPORT RequestId: 99c94309-570d-4195-9c24-42f9298cb3a5	Duration: 467.36 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2023-12-12T12:00:00.946Z START RequestId: 5b0ee76f-2ac3-4446-a883-a1d45de00997 Version: $LATEST

2023-12-12T12:00:00.989Z 2023-12-12T12:00:00.989Z	5b0ee76f-2ac3-4446-a883-a1d45de00997	INFO	Processing message 80b0c08b-c770-4420-8aa4-248c8857f9a4

2023-12-12T12:00:01.071Z 2023-12-12T12:00:01.071Z	5b0ee76f-2ac3-4446-a883-a1d45de00997	INFO	Start syncing the balance {
  transaction: {
    id: '01HPQY77ZXYYK596NGYA1DQ91K',
    userId: '6513270e-269e-4d37-b2a7-4de452e6b438',
    currency: 'BHD',
    amount: 11,
    vat: 0,
    oldBalance: 82.5,
    newBalance: 71.5
  }
}

2023-12-12T12:00:01.100Z 2023-12-12T12:00:01.100Z	5b0ee76f-2ac3-4446-a883-a1d45de00997	INFO	SubscriptionBalanceUpdated event published

2023-12-12T12:00:01.179Z 2023-12-12T12:00:01.179Z	5b0ee76f-2ac3-4446-a883-a1d45de00997	ERROR	Subscription balance and payment balance are not in sync {
  userId: '6513270e-269e-4d37-b2a7-4de452e6b438',
  subscriptionBalance: 71.5,
  paymentBalance: 488.5
}

2023-12-12T12:00:01.204Z {"_aws":{"Timestamp":1702384510307,"CloudWatchMetrics":[{"Namespace":"apiService","Dimensions":[["service"]],"Metrics":[{"Name":"subBalanceDiscrapancy","Unit":"Count"}]}]},"service":"syncBalanceSQS","subBalanceDiscrapancy":1,"userId":"6513270e-269e-4d37-b2a7-4de452e6b438","action":"DELIVERY_DEDUCTION"}

2023-12-12T12:00:01.235Z END RequestId: 5b0ee76f-2ac3-4446-a883-a1d45de00997

2023-12-12T12:00:01.265Z REPORT RequestId: 5b0ee76f-2ac3-4446-a883-a1d45de00997	Duration: 438.61 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2023-12-12T12:00:01.291Z START RequestId: 63771407-e8e7-4789-9eb2-0109a91c2439 Version: $LATEST

2023-12-12T12:00:01.353Z 2023-12-12T12:00:01.353Z	63771407-e8e7-4789-9eb2-0109a91c2439	INFO	transaction {"id":"01HCZP11HYGCPWPQ5E6EYCNDY0","type":"CREDIT","source":"PAYMENT","action":"PAY_PENDING_AMOUNT","amount":55,"vat":5,"userBalance":71.5,"userId":"6513270e-269e-4d37-b2a7-4de452e6b438","name":"Test Customer"}

2023-12-12T12:00:01.435Z 2023-12-12T12:00:01.435Z	63771407-e8e7-4789-9eb2-0109a91c2439	INFO	Processing message ca04c79f-6f15-46ad-adb3-997fe39639be

2023-12-12T12:00:01.478Z 2023-12-12T12:00:01.478Z	63771407-e8e7-4789-9eb2-0109a91c2439	INFO	Start syncing the balance {
  transaction: {
    id: '01HCZP11HYGCPWPQ5E6EYCNDY0',
    userId: '6513270e-269e-4d37-b2a7-4de452e6b438',
    currency: 'BHD',
    amount: 55,
    vat: 5,
    oldBalance: 71.5,
    newBalance: 121.5
  }
}

2023-12-12T12:00:01.490Z 2023-12-12T12:00:01.490Z	63771407-e8e7-4789-9eb2-0109a91c2439	INFO	SubscriptionBalanceUpdated event published

2023-12-12T12:00:01.541Z END RequestId: 63771407-e8e7-4789-9eb2-0109a91c2439

2023-12-12T12:00:01.552Z REPORT RequestId: 63771407-e8e7-4789-9eb2-0109a91c2439	Duration: 257.61 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2023-12-12T12:00:01.569Z START RequestId: fe3c9c8f-2b85-4c1f-a8aa-ca51b98c67c2 Version: $LATEST

2023-12-12T12:00:01.573Z 2023-12-12T12:00:01.573Z	fe3c9c8f-2b85-4c1f-a8aa-ca51b98c67c2	INFO	Skipping the balance sync for create subscription, it will be synced from create subscription payment listener

2023-12-12T12:00:01.593Z END RequestId: fe3c9c8f-2b85-4c1f-a8aa-ca51b98c67c2

2023-12-12T12:00:01.612Z REPORT RequestId: fe3c9c8f-2b85-4c1f-a8aa-ca51b98c67c2	Duration: 322.69 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2023-12-12T12:00:01.691Z Unknown application error occurred
Runtime.Unknown

2023-12-12T12:00:01.768Z 2023-12-12T12:00:01.768Z	undefined	ERROR	Uncaught Exception 	{"errorType":"Error","errorMessage":"Cannot find module '/var/task/node_modules/aws-sdk/clients/dynamodb'","stack":["Error: Cannot find module","    at Module._resolve (node:internal/modules:1)"]}

2023-12-12T12:00:01.829Z INIT_REPORT Init Duration: 766.09 ms	Phase: invoke	Status: error	Error Type: Runtime.ExitError

$log$),
('2024-01-14', $log$2024-01-14T21:00:00.002Z INIT_START Runtime Version: nodejs:20.v14	Runtime Version ARN: arn:aws:lambda:us-east-1::runtime:27e9e06f59b44e92effddeeaa842bc19057a40b22188287e8c5c715f8c74fc1e

2024-01-14T21:00:00.090Z START RequestId: 537390e5-0fcf-41ca-8e75-2fdf1ece615d Version: $LATEST

2024-01-14T21:00:00.104Z 2024-01-14T21:00:00.104Z	537390e5-0fcf-41ca-8e75-2fdf1ece615d	INFO	Processing message 7b8444d1-8e31-4041-87dd-aeb784b28054

2024-01-14T21:00:00.176Z 2024-01-14T21:00:00.176Z	537390e5-0fcf-41ca-8e75-2fdf1ece615d	INFO	Start syncing the balance {
  transaction: {
    id: '01H8VCD1GDJFMGT83PXT891WB0',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: 'd23f0824-128b-4f33-8c5c-7fd0a6a3a450',
    paymentBalance: 73,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#d23f0824-128b-4f33-8c5c-7fd0a6a3a450","deliveryId":"2c1eea1f-2659-44a7-8c96-6f46c6aa7d55","walletSk":"b9a6442e-9e7d-4b37-b936-d536243d3570","version":"syncBalanceSQS"}',
    currency: 'SAR',
    amount: 5,
    vat: 0,
    oldBalance: 78,
    newBalance: 73
  }
}

2024-01-14T21:00:00.184Z 2024-01-14T21:00:00.184Z	537390e5-0fcf-41ca-8e75-2fdf1ece615d	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:00.216Z END RequestId: 537390e5-0fcf-41ca-8e75-2fdf1ece615d

2024-01-14T21:00:00.225Z REPORT RequestId: 537390e5-0fcf-41ca-8e75-2fdf1ece615d	Duration: 117.45 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-8fcd7f4073c1cd2c81f98b52	SegmentId: e998d0eee4ddf9b9	Sampled: true	

2024-01-14T21:00:00.238Z START RequestId: 3836e865-77bd-491f-b7b1-03df23231e1e Version: $LATEST

2024-01-14T21:00:00.324Z 2024-01-14T21:00:00.324Z	3836e865-77bd-491f-b7b1-03df23231e1e	INFO	Processing message 29acf1a5-7cbd-4f5a-a28a-f60465f42986

2024-01-14T21:00:00.353Z 2024-01-14T21:00:00.353Z	3836e865-77bd-491f-b7b1-03df23231e1e	INFO	Start syncing the balance {
  transaction: {
    id: '01HMCHWYFGCW8T7SWM4FV4DK79',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: 'd23f0824-128b-4f33-8c5c-7fd0a6a3a450',
    paymentBalance: 31.5,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#d23f0824-128b-4f33-8c5c-7fd0a6a3a450","deliveryId":"a906922f-a4b9-49c4-b753-a1eef0836085","walletSk":"e2015522-40cb-4cd0-a49a-45845dbe3023","version":"syncBalanceSQS"}',
    currency: 'SAR',
    amount: 34.5,
    vat: 0,
    oldBalance: 73,
    newBalance: 31.5
  }
}

2024-01-14T21:00:00.374Z 2024-01-14T21:00:00.374Z	3836e865-77bd-491f-b7b1-03df23231e1e	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:00.430Z 2024-01-14T21:00:00.430Z	3836e865-77bd-491f-b7b1-03df23231e1e	ERROR	Subscription balance and payment balance are not in sync {
  userId: 'd23f0824-128b-4f33-8c5c-7fd0a6a3a450',
  subscriptionBalance: 31.5,
  paymentBalance: -2660.5
}

2024-01-14T21:00:00.496Z {"_aws":{"Timestamp":1702384510307,"CloudWatchMetrics":[{"Namespace":"apiService","Dimensions":[["service"]],"Metrics":[{"Name":"subBalanceDiscrapancy","Unit":"Count"}]}]},"service":"syncBalanceSQS","subBalanceDiscrapancy":1,"userId":"d23f0824-128b-4f33-8c5c-7fd0a6a3a450","action":"DELIVERY_DEDUCTION"}

2024-01-14T21:00:00.548Z END RequestId: 3836e865-77bd-491f-b7b1-03df23231e1e

2024-01-14T21:00:00.605Z REPORT RequestId: 3836e865-77bd-491f-b7b1-03df23231e1e	Duration: 193.63 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-5daf106db8dee081179a071e	SegmentId: 756b72898dd63cb9	Sampled: true	

2024-01-14T21:00:00.639Z START RequestId: cd37880e-16ac-4191-a26a-a0ae044f1574 Version: $LATEST

2024-01-14T21:00:00.648Z 2024-01-14T21:00:00.648Z	cd37880e-16ac-4191-a26a-a0ae044f1574	INFO	Processing message 38efbaeb-db31-4cd2-9bb1-83e11570266b

2024-01-14T21:00:00.682Z 2024-01-14T21:00:00.682Z	cd37880e-16ac-4191-a26a-a0ae044f1574	INFO	Start syncing the balance {
  transaction: {
    id: '01HRNJ47E65GH2BH8VGS9ZM5H3',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: 'd23f0824-128b-4f33-8c5c-7fd0a6a3a450',
    paymentBalance: 26.5,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#d23f0824-128b-4f33-8c5c-7fd0a6a3a450","deliveryId":"6ce193c2-2eef-4279-b02e-3d8dccb1c51d","walletSk":"f037afc6-44d8-4a53-9289-bafae5316960","version":"syncBalanceSQS"}',
    currency: 'SAR',
    amount: 5,
    vat: 0,
    oldBalance: 31.5,
    newBalance: 26.5
  }
}

2024-01-14T21:00:00.698Z 2024-01-14T21:00:00.698Z	cd37880e-16ac-4191-a26a-a0ae044f1574	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:00.757Z END RequestId: cd37880e-16ac-4191-a26a-a0ae044f1574

2024-01-14T21:00:00.811Z REPORT RequestId: cd37880e-16ac-4191-a26a-a0ae044f1574	Duration: 25.53 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2024-01-14T21:00:00.881Z START RequestId: 7eb86c57-a811-40a1-aea3-30a1a66d58b5 Version: $LATEST

2024-01-14T21:00:00.946Z 2024-01-14T21:00:00.946Z	7eb86c57-a811-40a1-aea3-30a1a66d58b5	INFO	Processing message f86664ae-64a1-49f5-a383-8b9ed5a9422a

2024-01-14T21:00:00.986Z 2024-01-14T21:00:00.986Z	7eb86c57-a811-40a1-aea3-30a1a66d58b5	INFO	Start syncing the balance {
  transaction: {
    id: '01H82F7AG3BCKKDJWBHP1G201C',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: '9531985d-5d9d-49f8-9818-e811892f902b',
    paymentBalance: 73,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#9531985d-5d9d-49f8-9818-e811892f902b","deliveryId":"ef44c0d5-3ee4-4a5a-b989-e9d083a4e629","walletSk":"d1a4c01e-a887-4e22-9b35-411b72723b9c","version":"syncBalanceSQS"}',
    currency: 'AED',
    amount: 11,
    vat: 0,
    oldBalance: 84,
    newBalance: 73
  }
}

2024-01-14T21:00:01.075Z 2024-01-14T21:00:01.075Z	7eb86c57-a811-40a1-aea3-30a1a66d58b5	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:01.103Z END RequestId: 7eb86c57-a811-40a1-aea3-30a1a66d58b5

2024-01-14T21:00:01.110Z REPORT RequestId: 7eb86c57-a811-40a1-aea3-30a1a66d58b5	Duration: 137.53 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-a2cf62baba958810b4ebf4b6	SegmentId: 58f92deafd4bd030	Sampled: true	

2024-01-14T21:00:01.171Z START RequestId: 1579da0a-61b2-480c-95d8-5e8d00460d69 Version: $LATEST

2024-01-14T21:00:01.203Z 2024-01-14T21:00:01.203Z	1579da0a-61b2-480c-95d8-5e8d00460d69	INFO	Processing message 33736dcc-a7f0-499e-80b5-244a4767e1fa

2024-01-14T21:00:01.268Z 2024-01-14T21:00:01.268Z	1579da0a-61b2-480c-95d8-5e8d00460d69	INFO	Start syncing the balance {
  transaction: {
    id: '01H804GVA35RJFJ2XBAHW0GQNM',
    type: 'CREDIT',
    source: 'PAYMENT',
    action: 'RENEW_SUBSCRIPTION',
    userId: '36f675cc-81e7-4ef5-a8e2-5d940ed90475',
    paymentBalance: 3680,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#36f675cc-81e7-4ef5-a8e2-5d940ed90475","deliveryId":"e1e437b7-f735-4fe6-88d1-80113e940bb4","walletSk":"2ed65411-5b49-4561-b7c6-0e984f3e885e","version":"syncBalanceSQS","planType":"custom","goal":"loseWeight","renewalDate":"2024-01-07","nextPlan":"{\\"id\\": \\"custom\\", \\"frequency\\": \\"monthly\\", \\"foodType\\": [\\"breakfast\\", \\"lunch\\"]}"}',
    currency: 'KWD',
    amount: 3916,
    vat: 356,
    oldBalance: 120,
    newBalance: 3680
  }
}

2024-01-14T21:00:01.269Z 2024-01-14T21:00:01.269Z	1579da0a-61b2-480c-95d8-5e8d00460d69	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:01.281Z END RequestId: 1579da0a-61b2-480c-95d8-5e8d00460d69

2024-01-14T21:00:01.292Z REPORT RequestId: 1579da0a-61b2-480c-95d8-5e8d00460d69	Duration: 155.21 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-05c22d3f64dbc8d30aaaaf81	SegmentId: 3b996870a1320b9d	Sampled: true	

2024-01-14T21:00:01.377Z START RequestId: 1789819f-8902-4afc-a5d9-fe8180c2b5f1 Version: $LATEST

2024-01-14T21:00:01.438Z 2024-01-14T21:00:01.438Z	1789819f-8902-4afc-a5d9-fe8180c2b5f1	INFO	Processing message bc9e28ea-bee8-4626-90e8-ad0186a74a63

2024-01-14T21:00:01.471Z 2024-01-14T21:00:01.471Z	1789819f-8902-4afc-a5d9-fe8180c2b5f1	INFO	Start syncing the balance {
  transaction: {
    id: '01H9RMZ9J92V81E5128Q6RW31F',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: '6b0d549b-6f03-475a-9600-a35a099950d8',
    paymentBalance: 411,
    updatePaymentBalance: true,
    metadata: undefined,
    currency: 'QAR',
    amount: 42,
    vat: 0,
    oldBalance: 453,
    newBalance: 411
  }
}

2024-01-14T21:00:01.481Z 2024-01-14T21:00:01.481Z	1789819f-8902-4afc-a5d9-fe8180c2b5f1	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:01.515Z END RequestId: 1789819f-8902-4afc-a5d9-fe8180c2b5f1

2024-01-14T21:00:01.603Z REPORT RequestId: 1789819f-8902-4afc-a5d9-fe8180c2b5f1	Duration: 140.36 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-7e736d5f75d8d8a4f9c9c679	SegmentId: 7aa068f113a5397f	Sampled: true	

2024-01-14T21:00:01.613Z START RequestId: 757f1cba-4a22-4f39-847b-2c107912ef4a Version: $LATEST

2024-01-14T21:00:01.671Z 2024-01-14T21:00:01.671Z	757f1cba-4a22-4f39-847b-2c107912ef4a	INFO	Processing message fe9eb4ad-f7d5-4124-81b1-c025d1e4d0a3

2024-01-14T21:00:01.706Z 2024-01-14T21:00:01.706Z	757f1cba-4a22-4f39-847b-2c107912ef4a	INFO	Start syncing the balance {
  transaction: {
    id: '01HJ2C49NGK80Y3ZH6DZJJXXX7',
    type: 'CREDIT',
    source: 'PAYMENT',
    action: 'RENEW_SUBSCRIPTION',
    userId: '6b0d549b-6f03-475a-9600-a35a099950d8',
    paymentBalance: 1729.73,
    updatePaymentBalance: true,
    metadata: `{"walletId":"wallet#6b0d549b-6f03-475a-9600-a35a099950d8","deliveryId":"33020ccd-8c90-473e-a4c7-17fdfe48ef63","walletSk":"efae5d4e-15fa-4b65-ba66-72cd4fc9e918","version":"syncBalanceSQS","note":"customer's request"}`,
    currency: 'QAR',
    amount: 1516.54,
    vat: 197.81,
    oldBalance: 411,
    newBalance: 1729.73
  }
}

2024-01-14T21:00:01.756Z 2024-01-14T21:00:01.756Z	757f1cba-4a22-4f39-847b-2c107912ef4a	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:01.783Z END RequestId: 757f1cba-4a22-4f39-847b-2c107912ef4a

2024-01-14T21:00:01.861Z REPORT RequestId: 757f1cba-4a22-4f39-847b-2c107912ef4a	Duration: 489.36 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-86292bb5bf5b411b24491df6	SegmentId: 21f267e25c0bb40f	Sampled: true	

2024-01-14T21:00:01.899Z START RequestId: bd6a996d-e6cd-40f1-8300-3005b688b661 Version: $LATEST

2024-01-14T21:00:01.949Z 2024-01-14T21:00:01.949Z	bd6a996d-e6cd-40f1-8300-3005b688b661	INFO	Processing message 64950dc2-10a2-4b19-9f49-f0fc40d28406

2024-01-14T21:00:02.025Z 2024-01-14T21:00:02.025Z	bd6a996d-e6cd-40f1-8300-3005b688b661	INFO	Start syncing the balance {
  transaction: {
    id: '01HH7QEZZS1A0ZWSK9TPRM7N0M',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: '8d116ece-1738-47d9-bd9c-172411e20b8f',
    paymentBalance: 268.0000000001,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#8d116ece-1738-47d9-bd9c-172411e20b8f","deliveryId":"65f456aa-d6cf-4718-9699-08f6c0301b21","walletSk":"321c1744-ed28-49c1-b09c-0afb1ebb0794","version":"syncBalanceSQS"}',
    currency: 'BHD',
    amount: 42,
    vat: 0,
    oldBalance: 310,
    newBalance: 268.0000000001
  }
}

2024-01-14T21:00:02.035Z 2024-01-14T21:00:02.035Z	bd6a996d-e6cd-40f1-8300-3005b688b661	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:02.082Z END RequestId: bd6a996d-e6cd-40f1-8300-3005b688b661

2024-01-14T21:00:02.089Z REPORT RequestId: bd6a996d-e6cd-40f1-8300-3005b688b661	Duration: 493.64 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2024-01-14T21:00:02.173Z START RequestId: bd313bee-4178-4bc6-8c3a-c6fc48208231 Version: $LATEST

2024-01-14T21:00:02.212Z 2024-01-14T21:00:02.212Z	bd313bee-4178-4bc6-8c3a-c6fc48208231	INFO	Processing message 3d1926ac-a7ef-4f5d-a7fd-5499429a7079

2024-01-14T21:00:02.274Z 2024-01-14T21:00:02.274Z	bd313bee-4178-4bc6-8c3a-c6fc48208231	INFO	Start syncing the balance {
  transaction: {
    id: '01HH63J9FHVMCQV1SD53TW8JZ3',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: '8d116ece-1738-47d9-bd9c-172411e20b8f',
    paymentBalance: -40,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#8d116ece-1738-47d9-bd9c-172411e20b8f","deliveryId":"2097798c-8cd3-4418-ad41-42bae9729f3f","walletSk":"57fa49e5-6a34-4371-b8e1-0e702bb71c68","version":"syncBalanceSQS"}',
    currency: 'BHD',
    amount: 308.0000000001,
    vat: 0,
    oldBalance: 268.0000000001,
    newBalance: -40
  }
}

2024-01-14T21:00:02.346Z 2024-01-14T21:00:02.346Z	bd313bee-4178-4bc6-8c3a-c6fc48208231	INFO	SubscriptionBalanceUpdated event published

2024-01-14T21:00:02.432Z 2024-01-14T21:00:02.432Z	bd313bee-4178-4bc6-8c3a-c6fc48208231	ERROR	Subscription balance and payment balance are not in sync {
  userId: '8d116ece-1738-47d9-bd9c-172411e20b8f',
  subscriptionBalance: -40,
  paymentBalance: -40
}

2024-01-14T21:00:02.483Z {"_aws":{"Timestamp":1702384510307,"CloudWatchMetrics":[{"Namespace":"apiService","Dimensions":[["service"]],"Metrics":[{"Name":"subBalanceDiscrapancy","Unit":"Count"}]}]},"service":"syncBalanceSQS","subBalanceDiscrapancy":1,"userId":"8d116ece-1738-47d9-bd9c-172411e20b8f","action":"DELIVERY_DEDUCTION"}

2024-01-14T21:00:02.499Z END RequestId: bd313bee-4178-4bc6-8c3a-c6fc48208231

2024-01-14T21:00:02.542Z REPORT RequestId: bd313bee-4178-4bc6-8c3a-c6fc48208231	Duration: 105.92 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-cfd3dd72e7ecfd0c8027a2a2	SegmentId: 73f6e53d3853933d	Sampled: true	

2024-01-14T21:00:02.560Z START RequestId: 6d6b987a-7330-4b95-825e-114fff18fe33 Version: $LATEST

2024-01-14T21:00:02.583Z 2024-01-14T21:00:02.583Z	6d6b987a-7330-4b95-825e-114fff18fe33	INFO	Processing message 173910e3-3e7c-4567-b141-97758c3ba859

2024-01-14T21:00:02.627Z 2024-01-14T21:00:02.627Z	6d6b987a-7330-4b95-825e-114fff18fe33	INFO	Start syncing the balance {
  transaction: {
    id: '01HH63J9FHVMCQV1SD53TW8JZ3',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: '8d116ece-1738-47d9-bd9c-172411e20b8f',
    paymentBalance: -40,
    updatePaymentBalance: true,
    metadata: '{"walletId":"wallet#8d116ece-1738-47d9-bd9c-172411e20b8f","deliveryId":"2097798c-8cd3-4418-ad41-42bae9729f3f","walletSk":"57fa49e5-6a34-4371-b8e1-0e702bb71c68","version":"syncBalanceSQS"}',
    currency: 'BHD',
    amount: 308.0000000001,
    vat: 0,
    oldBalance: 268.0000000001,
    newBalance: -40
  }
}

2024-01-14T21:00:02.699Z 2024-01-14T21:00:02.699Z	6d6b987a-7330-4b95-825e-114fff18fe33	INFO	Skipping the process, balance is already synced from other listeners

2024-01-14T21:00:02.711Z END RequestId: 6d6b987a-7330-4b95-825e-114fff18fe33

2024-01-14T21:00:02.784Z REPORT RequestId: 6d6b987a-7330-4b95-825e-114fff18fe33	Duration: 183.40 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2024-01-14T21:00:02.787Z START RequestId: f7d17ebd-df75-4883-9078-84b7d9435541 Version: $LATEST

2024-01-14T21:00:02.804Z 2024-01-14T21:00:02.804Z	f7d17ebd-df75-4883-9078-84b7d9435541	INFO	{
  message: 'Subscriber will have a negative balance due to this action, the process will terminate.',
  data: {
    userId: '8d116ece-1738-47d9-bd9c-172411e20b8f',
    currentBalance: -40,
    transactionId: '01HC1TRTDRHN3ZHQ8D5HFRSWVK'
  }
}

2024-01-14T21:00:02.809Z END RequestId: f7d17ebd-df75-4883-9078-84b7d9435541

2024-01-14T21:00:02.872Z REPORT RequestId: f7d17ebd-df75-4883-9078-84b7d9435541	Duration: 237.70 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2024-01-14T21:00:02.940Z START RequestId: ee241c43-643a-49e2-92b9-2a01000bb5f9 Version: $LATEST

2024-01-14T21:00:03.000Z 2024-01-14T21:00:03.000Z	ee241c43-643a-49e2-92b9-2a01000bb5f9	INFO	Skipping the process, Update Payment Balance Flag is set to false { transactionAction: 'DONATE_RAMADAN_MEAL' }

2024-01-14T21:00:03.058Z END RequestId: ee241c43-643a-49e2-92b9-2a01000bb5f9

2024-01-14T21:00:03.148Z REPORT RequestId: ee241c43-643a-49e2-92b9-2a01000bb5f9	Duration: 147.23 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	
XRAY TraceId: 1-6579cbfd-ae9c78bdf8cd9ec385b9c09a	SegmentId: b8c3a4d2d34d1c0d	Sampled: true	

2024-01-14T21:00:03.207Z START RequestId: e5174ebd-c3c9-47e3-98b4-c831a5b89b2f Version: $LATEST

2024-01-14T21:00:03.208Z 2024-01-14T21:00:03.208Z	e5174ebd-c3c9-47e3-98b4-c831a5b89b2f	INFO	Processing message 0a1fb43b-c6e0-473a-8d2f-29e715c2c81a

2024-01-14T21:00:03.225Z 2024-01-14T21:00:03.225Z	e5174ebd-c3c9-47e3-98b4-c831a5b89b2f	ERROR	An error occured while syncing the balance TypeError: Cannot read properties of null (reading 'getBalance')
    at Zi.exec (/src/syncBalance/useCase.ts:55:37)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)

2024-01-14T21:00:03.255Z {"_aws":{"Timestamp":1713166174881,"CloudWatchMetrics":[{"Namespace":"apiService","Dimensions":[["service"]],"Metrics":[{"Name":"synBalanceError","Unit":"Count"}]}]},"service":"syncBalanceSQS","synBalanceError":1}

2024-01-14T21:00:03.328Z END RequestId: e5174ebd-c3c9-47e3-98b4-c831a5b89b2f

2024-01-14T21:00:03.367Z REPORT RequestId: e5174ebd-c3c9-47e3-98b4-c831a5b89b2f	Duration: 490.14 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

2024-01-14T21:00:03.435Z START RequestId: 4075916e-a060-446c-a0c2-6f71f662222e Version: $LATEST

2024-01-14T21:00:03.438Z 2024-01-14T21:00:03.438Z	4075916e-a060-446c-a0c2-6f71f662222e	INFO	Transaction Lock created!!!!!!!!!!!!!!!!!!!!!!!!!!! Rr {
  dirty: {},
  original: {
    id: 'trxLock#6513270e-269e-4d37-b2a7-4de452e6b438',
    sk: '01HV764KCRGE00KXHMFYFF1TK3',
    userId: '6513270e-269e-4d37-b2a7-4de452e6b438',
    dataType: 'trxLock',
    createdAt: '2024-04-25T12:17:23.150Z',
    updatedAt: '2024-04-25T12:17:23.150Z'
  }
}

2024-01-14T21:00:03.463Z END RequestId: 4075916e-a060-446c-a0c2-6f71f662222e

2024-01-14T21:00:03.474Z REPORT RequestId: 4075916e-a060-446c-a0c2-6f71f662222e	Duration: 275.96 ms	Billed Duration: 100 ms	Memory Size: 1024 MB	Max Memory Used: 104 MB	

$log$);

CREATE TEMP VIEW ev AS
SELECT s.name, p.*, to_char(p.logged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at_utc
FROM sample_log s, calo_recon.parse_log(s.log) p;

-- events per file: the answer key says 47 + 83 = 130, none malformed
SELECT name, count(*) AS events, max(event_no) AS last_no,
       count(*) FILTER (WHERE kind = 'malformed') AS malformed
FROM ev GROUP BY name ORDER BY name;

SELECT name, kind, count(*) FROM ev GROUP BY name, kind ORDER BY name, kind;

-- every kind returned is documented
SELECT DISTINCT kind FROM ev
WHERE kind NOT IN (SELECT kind FROM calo_recon.parse_log_kinds()) ORDER BY 1;
SELECT count(*) AS documented_kinds FROM calo_recon.parse_log_kinds();
-- the parser's own list, whole
SELECT * FROM calo_recon.parse_log_kinds();
-- every key a data event's body holds is one its kind documents (the
-- documentation is generated from the field tables the parser validates by)
SELECT DISTINCT e.kind, k.key
FROM ev e CROSS JOIN LATERAL jsonb_object_keys(e.body) AS k(key)
WHERE e.kind IN (SELECT kind FROM calo_recon.parse_log_kinds() WHERE family = 'data')
  AND k.key NOT IN (SELECT m[1] FROM calo_recon.parse_log_kinds() d,
                    regexp_matches(d.body, '"([A-Za-z_]+)"', 'g') AS m
                    WHERE d.kind = e.kind)
ORDER BY 1, 2;

-- a legacy transaction and a current one, whole
SELECT name, event_no, at_utc, request_id, level, message_id, jsonb_pretty(body)
FROM ev WHERE kind = 'transaction' AND (name, event_no) IN (('2023-12-12', 4), ('2024-01-14', 30))
ORDER BY name;

-- numbers keep their exact text
SELECT name, event_no, body->>'id' AS id, body->>'legacy' AS legacy, body->>'amount' AS amount,
       body->>'vat' AS vat, body->>'oldBalance' AS old_balance, body->>'newBalance' AS new_balance,
       body->>'paymentBalance' AS payment_balance
FROM ev WHERE kind = 'transaction' ORDER BY name, event_no;

-- metadata: JSON object, object with a nested JSON string, backtick string with an apostrophe, undefined
SELECT body->>'id' AS id, jsonb_typeof(body->'metadata') AS type,
       body->'metadata'->>'note' AS note,
       jsonb_typeof(body->'metadata'->'nextPlan') AS next_plan_type,
       (body->'metadata'->>'nextPlan')::jsonb->'foodType' AS next_plan_food
FROM ev WHERE kind = 'transaction' AND NOT (body->>'legacy')::boolean ORDER BY name, event_no;

-- balance errors and the transaction of the same request and message
SELECT e.name, e.event_no, e.request_id, e.message_id, e.body
FROM ev e WHERE kind = 'balance_error' ORDER BY name, event_no;

SELECT name, event_no, level, body FROM ev WHERE kind = 'negative_balance_rejection';

-- platform and informational bodies of the second file
SELECT event_no, kind, level, request_id IS NULL AS no_request, body
FROM ev WHERE name = '2024-01-14'
  AND kind IN ('init_start', 'report', 'metric', 'skip', 'sync_error', 'transaction_lock')
  AND event_no IN (1, 7, 13, 71, 76, 77, 81)
ORDER BY event_no;

SELECT event_no, kind, level, request_id, body
FROM ev WHERE name = '2023-12-12' AND event_no IN (35, 42, 45, 46, 47) ORDER BY event_no;

-- raw is the event text exactly: pasting the events back gives the file
SELECT name, string_agg(raw, E'\n\n' ORDER BY event_no) || E'\n\n' = min(s.log) AS raw_roundtrip
FROM ev JOIN sample_log s USING (name) GROUP BY name ORDER BY name;

-- message ids: set by Processing message, kept by later events of the request
SELECT name, count(*) FILTER (WHERE message_id IS NOT NULL) AS with_message,
       count(*) FILTER (WHERE kind IN ('transaction', 'balance_error') AND message_id IS NULL) AS data_without_message
FROM ev GROUP BY name ORDER BY name;

-- cross-check with the answer key shipped beside the sample files
CREATE TEMP TABLE answer AS
SELECT pg_read_file(current_setting('calo_recon.import_directory') || '/samples/answer-key.json')::jsonb AS key;
CREATE TEMP VIEW key_txn AS
SELECT t->>'id' AS id, t->>'userId' AS user_id, (t->>'legacy')::boolean AS legacy
FROM answer, jsonb_array_elements(key->'transactions') t;
CREATE TEMP VIEW parsed_txn AS
SELECT DISTINCT body->>'id' AS id, body->>'userId' AS user_id, (body->>'legacy')::boolean AS legacy
FROM ev WHERE kind = 'transaction';
SELECT (SELECT (key->'expected'->>'events')::int FROM answer) AS key_events,
       (SELECT count(*) FROM ev) AS parsed_events,
       (SELECT (key->'expected'->>'sync_blocks')::int FROM answer) AS key_sync_blocks,
       (SELECT count(*) FROM ev WHERE kind = 'transaction') AS parsed_sync_blocks,
       (SELECT count(*) FROM key_txn) AS key_distinct_txns,
       (SELECT count(*) FROM parsed_txn) AS parsed_distinct_txns,
       NOT EXISTS (SELECT * FROM key_txn EXCEPT SELECT * FROM parsed_txn)
         AND NOT EXISTS (SELECT * FROM parsed_txn EXCEPT SELECT * FROM key_txn) AS txns_match,
       NOT EXISTS (SELECT e->>'userId', (e->>'subscriptionBalance')::numeric, (e->>'paymentBalance')::numeric
                   FROM answer, jsonb_array_elements(key->'errors') e
                   EXCEPT ALL
                   SELECT body->>'userId', (body->>'subscriptionBalance')::numeric, (body->>'paymentBalance')::numeric
                   FROM ev WHERE kind = 'balance_error')
         AND (SELECT count(*) FROM ev WHERE kind = 'balance_error')
             = (SELECT jsonb_array_length(key->'errors') FROM answer) AS errors_match,
       (SELECT array_agg(r->>'transactionId') FROM answer, jsonb_array_elements(key->'negative_balance_rejections') r)
         = (SELECT array_agg(body->>'transactionId') FROM ev WHERE kind = 'negative_balance_rejection') AS rejections_match;

-- edge cases
CREATE TEMP TABLE edge (name text PRIMARY KEY, log text);
INSERT INTO edge VALUES
('truncated', E'2024-01-14T21:00:00.090Z START RequestId: r1 Version: $LATEST\n\n2024-01-14T21:00:00.176Z 2024-01-14T21:00:00.176Z\tr1\tINFO\tStart syncing the balance {\n  transaction: {\n    id: \'01H8VCD1GDJFMGT83PXT891WB0\',\n    type: \'DEB'),
('no_timestamp', E'this is not a log\nat all\n\n2024-01-14T21:00:00.216Z END RequestId: r1\n'),
('bad_timestamp', E'2024-02-30T21:00:00.216Z END RequestId: r1\n\n2024-01-14T21:00:00.216Z 2024-01-14T21:61:00.216Z\tr1\tINFO\thello\n'),
('bad_number', E'2024-01-14T21:00:00.104Z 2024-01-14T21:00:00.104Z\tr1\tINFO\tStart syncing the balance { transaction: { id: \'T\', userId: \'u\', currency: \'BHD\', amount: NaN, vat: 0, oldBalance: 1, newBalance: 0 } }\n'),
('missing_field', E'2024-01-14T21:00:00.104Z 2024-01-14T21:00:00.104Z\tr1\tERROR\tSubscription balance and payment balance are not in sync { userId: \'u\', paymentBalance: 1 }\n'),
('syntax', E'2024-01-14T21:00:00.104Z 2024-01-14T21:00:00.104Z\tr1\tERROR\tSubscription balance and payment balance are not in sync {\n  userId: \'u\'\n  subscriptionBalance: 1 }\n'),
('crlf_undefined', E'2024-01-14T21:00:00.104Z 2024-01-14T21:00:00.104Z\tundefined\tINFO\tStart syncing the balance {\r\n  transaction: {\r\n    id: \'T9\',\r\n    userId: \'u\',\r\n    currency: \'BHD\',\r\n    amount: 11608.930300000001,\r\n    vat: -0.0001,\r\n    oldBalance: 0,\r\n    newBalance: 1e2\r\n  }\r\n}\r\n\r\n2024-01-14T21:00:00.200Z END RequestId: r1'),
('link_after', E'2024-01-14T21:00:00.104Z 2024-01-14T21:00:00.104Z\tr1\tINFO\tProcessing message m1\n\n2024-01-14T21:00:00.105Z 2024-01-14T21:00:00.105Z\tr1\tERROR\tSubscription balance and payment balance are not in sync { userId: \'u\', subscriptionBalance: 1, paymentBalance: 2 }\n\n2024-01-14T21:00:00.106Z 2024-01-14T21:00:00.106Z\tr1\tINFO\tStart syncing the balance { transaction: { id: \'T-after\', userId: \'u\', currency: \'BHD\', amount: 1, vat: 0, oldBalance: 2, newBalance: 1 } }\n'),
('empty', ''),
('null', NULL);

SELECT e.name, p.event_no, to_char(p.logged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at_utc,
       p.request_id, p.level, p.kind, p.message_id, p.body
FROM edge e, calo_recon.parse_log(e.log) p ORDER BY e.name, p.event_no;

SELECT count(*) AS rows_for_empty_and_null FROM edge e, calo_recon.parse_log(e.log) p WHERE e.name IN ('empty', 'null');

-- a text value that is not valid UTF-8 cannot reach the function: PostgreSQL refuses it first
SELECT count(*) FROM calo_recon.parse_log(convert_from('\x323032342d30312d31345432313a30303a30302e3231365a20ff'::bytea, 'UTF8'));

-- the result does not depend on the session time zone or date style
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'German';
SELECT min(logged_at) = '2023-12-12 12:00:00.029+00'::timestamptz AS same_instant,
       to_char(min(logged_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS first_utc
FROM sample_log s, calo_recon.parse_log(s.log);
RESET TimeZone;
RESET DateStyle;

SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, p.proretset,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'calo_recon' AND p.proname IN ('parse_log', 'parse_log_kinds') ORDER BY 1;
