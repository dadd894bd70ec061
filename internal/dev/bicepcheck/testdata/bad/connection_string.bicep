param accountName string
@secure()
param accountKey string

var settings = {
  AzureWebJobsStorage: 'AccountName=${accountName};AccountKey=${accountKey}'
}

output settings object = settings
