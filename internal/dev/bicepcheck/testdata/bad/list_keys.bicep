resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'stexample'
}

output key string = account.listKeys().keys[0].value
